"""The gradient corpus: one case per line — (expression, wrt, shapes, reference closed form).

The reference is a closed form written by hand (from the seeds, corrected where the
seed has a typo); tests check matgrad's gradient numerically against finite
differences AND against the reference, so adding a case is one line.
"""

CASES = [
    # UFLDL example 1: sparse coding weight objective (seed 000/001)
    ("||A*s - x||^2 + gamma*||A||^2", "s", None, "2*A'*(A*s - x)"),
    ("||A*s - x||^2 + gamma*||A||^2", "A", None, "2*(A*s - x)*s' + 2*gamma*A"),
    ("||A*s - x||^2 + gamma*||A||^2", "gamma", None, "||A||^2"),
    # UFLDL example 2: smoothed topographic L1 penalty; the page's layer-1 f(z) = z² is s.^2
    ("sum(sqrt(V*(s.^2) + eps))", "s", None, "(V'*(V*s.^2 + eps).^(-1/2)) .* s"),
    # UFLDL example 3: ICA reconstruction cost, tied weights W and W'
    ("||W'*W*x - x||^2", "W", None, "2*W*(W'*W*x - x)*x' + 2*W*x*(W'*W*x - x)'"),
    ("||W'*W*x - x||^2", "x", None, "2*(W'*W - I)'*(W'*W*x - x)"),
    # CS6910: MLP with tanh / sigmoid hidden layers, softmax + cross-entropy (y a probability vector)
    ("-y'*log(softmax(a))", "a", {"y": "prob"}, "softmax(a) - y"),
    ("-y'*log(softmax(W2*tanh(W1*x + b1) + b2))", "b2", {"y": "prob"}, "softmax(W2*tanh(W1*x + b1) + b2) - y"),
    ("-y'*log(softmax(W2*tanh(W1*x + b1) + b2))", "W2", {"y": "prob"},
     "(softmax(W2*tanh(W1*x + b1) + b2) - y)*tanh(W1*x + b1)'"),
    ("-y'*log(softmax(W2*tanh(W1*x + b1) + b2))", "b1", {"y": "prob"},
     "(W2'*(softmax(W2*tanh(W1*x + b1) + b2) - y)) .* (1 - tanh(W1*x + b1).^2)"),
    ("-y'*log(softmax(W2*sigmoid(W1*x + b1) + b2))", "W1", {"y": "prob"},
     "((W2'*(softmax(W2*sigmoid(W1*x + b1) + b2) - y)) .* sigmoid(W1*x + b1) .* (1 - sigmoid(W1*x + b1)))*x'"),
    ("-y'*log(softmax(W3*tanh(W2*tanh(W1*x + b1) + b2) + b3))", "b3", {"y": "prob"},
     "softmax(W3*tanh(W2*tanh(W1*x + b1) + b2) + b3) - y"),
    # Sadeghi: ||WXV - U||_F^2 for each variable ("transpose the neighbours"), sign +2
    ("||W*X*V - U||^2", "W", None, "2*(W*X*V - U)*(X*V)'"),
    ("||W*X*V - U||^2", "X", None, "2*W'*(W*X*V - U)*V'"),
    ("||W*X*V - U||^2", "V", None, "2*(W*X)'*(W*X*V - U)"),
    # Sadeghi least squares ||y - Wx||²
    ("||y - W*x||^2", "x", None, "-2*W'*(y - W*x)"),
    ("||y - W*x||^2", "W", None, "-2*(y - W*x)*x'"),
    # Sadeghi L-layer network with squared error, one sigmoid layer
    ("||W2*sigmoid(W1*x + b1) + b2 - y||^2", "b1", None,
     "2*(W2'*(W2*sigmoid(W1*x + b1) + b2 - y)) .* sigmoid(W1*x + b1) .* (1 - sigmoid(W1*x + b1))"),
    # Galvan: matrix-notation recurrence, Δ_i = W_{i+1}' Δ_{i+1} ∘ σ'(a_i)
    ("sum(W2*tanh(W1*x))", "W1", None, "((W2'*ones) .* (1 - tanh(W1*x).^2))*x'"),
    # Classic forms
    ("x'*A*x", "x", None, "(A + A')*x"),
    ("a'*X*b", "X", None, "a*b'"),
    ("tr(A*X*B)", "X", None, "A'*B'"),
    ("logdet(X)", "X", None, "inv(X)'"),
    ("log(det(X))", "X", None, "inv(X)'"),
    ("det(X)", "X", None, "det(X)*inv(X)'"),
    ("a'*inv(X)*b", "X", None, "-inv(X)'*a*b'*inv(X)'"),
    ("tr(X'*X)^2", "X", None, "4*tr(X'*X)*X"),
    ("b'*X'*X*c", "X", None, "X*(b*c' + c*b')"),
    ("sum(exp(X*a))", "a", None, "X'*exp(X*a)"),
    ("||x||", "x", None, "x/||x||"),
    ("||x||_1", "x", None, "sign(x)"),
    ("sum(log(1 + exp(-y .* (X*w))))", "w", None, "-X'*(y .* sigmoid(-y .* (X*w)))"),
    ("logsumexp(W*x)", "x", None, "W'*softmax(W*x)"),
    ("x'*S*x", "S", {"S": "symmetric"}, "x*x'"),
    ("tr(A*S)", "S", {"S": "symmetric"}, "(A + A')/2"),
    ("0.5*logdet(S) - 0.5*(x - mu)'*inv(S)*(x - mu)", "S", {"S": "spd", "mu": "vector"},
     "0.5*inv(S) + 0.5*inv(S)*(x - mu)*(x - mu)'*inv(S)"),
]
