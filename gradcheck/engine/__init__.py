"""The numerics: the problem set up once (problem), the perturbation engine (differencing) and the
differencing methods (methods), Jacobian structure (structure), tolerances (tolerance), the verdict type
(verdict), convergence order (convergence), the diagnosis of a mismatch (diagnosis), residuals of stacks
(residuals), and thread control (threads)."""
