"""``smartcare hospital score`` / ``ddi-check`` / ``medcalc-eval``: clinical scores and interactions."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from smartcare.core.errors import SmartcareError


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SmartcareError(f"file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise SmartcareError(f"{path} is not valid JSON: {err}") from None


def _value(text: str):
    low = text.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    try:
        return float(text)
    except ValueError:
        return text


def score(
    name: str = typer.Argument(..., help="Calculator, e.g. NEWS2, qSOFA, CHA2DS2-VASc, HAS-BLED, CURB-65, CKD-EPI."),
    fhir: Path = typer.Option(None, "--fhir", help="FHIR Bundle / resource / list JSON to read inputs from."),
    inputs: list[str] = typer.Option([], "--input", "-i", help="Extra input NAME=VALUE (e.g. news2_scale=2)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Compute a clinical score from FHIR resources and/or explicit inputs."""
    from smartcare.hospital.cds.calculators import calculate, check_inputs
    from smartcare.hospital.cds.fhir_inputs import extract_inputs

    explicit: dict = {}
    for item in inputs:
        if "=" not in item:
            raise SmartcareError(f"--input expects NAME=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        explicit[key.strip()] = _value(text.strip())
    check_inputs(name, explicit)  # unknown names / out-of-domain values: exit 2 listing the valid inputs
    values: dict = dict(extract_inputs(_read_json(fhir))) if fhir else {}
    values.update(explicit)
    result = calculate(name, values)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    typer.echo(f"{result.score}: {result.total} {result.unit or ''}  band: {result.band}")
    for c in result.criteria:
        refs = f"  [{', '.join(c.references)}]" if c.references else ""
        typer.echo(f"  {c.label}: {c.points}  (value {c.value}){refs}")
    if result.missing:
        typer.echo(f"missing: {', '.join(result.missing)}")
    for a in result.assumptions:
        typer.echo(f"assumed: {a}")
    typer.echo(f"interpretation: {result.interpretation}\nsource: {result.citation}")


def score_inputs(
    name: str = typer.Argument(..., help="Calculator name (see `smartcare hospital score --help`)."),
) -> None:
    """List the inputs a calculator reads and the values each accepts."""
    from smartcare.hospital.cds.calculators import calculator_inputs

    for key, kinds in calculator_inputs(name).items():
        typer.echo(f"{key}: {', '.join(kinds)}")


def ddi_check(
    path: Path = typer.Argument(..., help="FHIR Bundle / list of medication resources (JSON)."),
    out: Path = typer.Option(None, "--out", help="Write the DetectedIssue resources (a Bundle) here."),
    patient: str = typer.Option("", help="Patient reference for DetectedIssue.patient."),
    high_only: bool = typer.Option(False, "--high-only", help="Skip ONC non-interruptive pairs."),
) -> None:
    """Check a medication list against the ONC interaction lists; optionally write DetectedIssues."""
    from smartcare.hospital.cds.fhir_inputs import MED_TYPES, flatten
    from smartcare.hospital.cds.interactions import check_medications, detected_issue

    data = _read_json(path)
    if not isinstance(data, dict | list):
        raise SmartcareError(f"{path}: expected a FHIR Bundle, resource or list of resources")
    n_meds = sum(1 for r in flatten(data) if isinstance(r, dict) and r.get("resourceType") in MED_TYPES)
    if n_meds == 0:
        raise SmartcareError(f"{path}: no medication resources ({', '.join(sorted(MED_TYPES))}) to check")
    hits = check_medications(data, include_non_interruptive=not high_only)
    for h in hits:
        typer.echo(f"{h.severity:8s} {h.ingredient_a} + {h.ingredient_b}  ({h.source})  {', '.join(h.references)}")
    if not hits:
        typer.echo("no interactions found")
    if out is not None:
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": detected_issue(h, patient or None)} for h in hits],
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")  # never leave a half-written file under the final name
        tmp.write_text(json.dumps(bundle, indent=2), encoding="utf-8")
        tmp.replace(out)
        typer.echo(f"wrote {len(hits)} DetectedIssue to {out}")


def medcalc_eval(
    csv: Path = typer.Option(None, help="MedCalc-Bench CSV; default: the shared medcalc-bench-scores subset."),
    show_disagreements: bool = typer.Option(False, help="List every disagreeing row."),
) -> None:
    """Agreement per calculator on MedCalc-Bench, using the Relevant Entities column as input."""
    from smartcare.hospital.cds.medcalc import agreement, evaluate

    results = evaluate(csv)
    for name, d in sorted(agreement(results).items()):
        typer.echo(f"{name:20s} {d['agree']:>3d}/{d['n']:<3d} {d['rate']:.3f}")
    typer.echo(f"overall {sum(r.agree for r in results)}/{len(results)}")
    if show_disagreements:
        for r in results:
            if not r.agree:
                typer.echo(f"row {r.row} {r.calculator}: ours {r.ours}, ground truth {r.truth}")


def register(app: typer.Typer) -> None:
    """Add the CDS commands to the ``smartcare hospital`` app."""
    app.command("score")(score)
    app.command("score-inputs")(score_inputs)
    app.command("ddi-check")(ddi_check)
    app.command("medcalc-eval")(medcalc_eval)
