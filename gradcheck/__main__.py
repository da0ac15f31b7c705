"""``python -m gradcheck run [PATHS...]``, the same as the ``gradcheck`` command."""

from gradcheck.cli import main

if __name__ == "__main__":
    main(prog_name="gradcheck")
