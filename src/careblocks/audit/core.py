"""Findings and the severity policy of the input audit."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from careblocks.errors import AuditError, DataQualityWarning

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    """One result of the audit.

    ``where`` names the config key, file or column; ``message`` is one line that already
    says what is wrong and the fix (errors and warnings) or gives the figure (info).
    """

    severity: Severity
    check: str
    where: str
    message: str
    value: float | None = None

    def line(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Audit:
    """The findings of one run, in the order they were made."""

    strict: bool = False
    findings: list[Finding] = field(default_factory=list)

    def add(self, severity: Severity, check: str, where: str, message: str,
            value: float | None = None) -> Finding:
        f = Finding(severity, check, where, " ".join(str(message).split()), value)
        self.findings.append(f)
        if severity == "warning":
            # the pipeline's stage collector sends it to the terminal and the run metadata
            warnings.warn(f.line(), DataQualityWarning, stacklevel=3)
        return f

    def error(self, check: str, where: str, message: str, value: float | None = None) -> Finding:
        return self.add("error", check, where, message, value)

    def warning(self, check: str, where: str, message: str, value: float | None = None) -> Finding:
        return self.add("warning", check, where, message, value)

    def info(self, check: str, where: str, message: str, value: float | None = None) -> Finding:
        return self.add("info", check, where, message, value)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def verdict(self) -> str:
        """``"error"``, ``"warning"`` or ``"ok"``."""
        if self.errors:
            return "error"
        return "warning" if self.warnings else "ok"

    def raise_if_errors(self) -> None:
        """Stop with the first error as one line (and how many more there are)."""
        errs = self.errors
        if not errs:
            return
        more = f" (and {len(errs) - 1} more audit errors)" if len(errs) > 1 else ""
        raise AuditError(errs[0].line() + more)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict(),
            "strict": self.strict,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [asdict(f) for f in self.findings],
        }
