"""YAML cases and a user's layer module, as text: shared by the CLI and plugin tests."""

# A small correct FC case; format with name=...
CASE = """\
name: {name}
source: "002 - the FC layer in matrix form, batch_size=10"
layer: fully_connected
inputs:
  x: {{shape: [4, 5]}}
  W: {{shape: [5, 3]}}
  b: {{shape: [3]}}
check: {{strategy: exhaustive}}
expect: {{output_shape: [4, 3], parameters: 18}}
"""

# A user's layer y = a * x with a planted bug in d/da: only the first row of the batch is summed.
USER_LAYERS = '''
class Scale:
    inputs = ("x", "a")
    complex_safe = True

    def forward(self, x, a):
        return x * a, (x, a)

    def backward(self, dy, cache):
        x, a = cache
        return {"x": dy * a, "a": (dy * x)[0]}
'''

USER_CASE = """\
name: user-scale-planted
source: "a user's own layer"
layer: userlayers:Scale
inputs:
  x: {shape: [3, 4]}
  a: {shape: [4]}
check: {strategy: exhaustive}
"""
