"""Test helper: what a refused command must print (docs/reliability.md): exit 2, exactly one
`error:` line, no traceback, and not the boundary's "internal error" (an unforeseen failure)."""

from __future__ import annotations


def one_error(result) -> str:
    """The one `error:` line of a CliRunner `result`, after checking the rules above."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2, result.output
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert "internal error" not in errors[0]
    return errors[0]
