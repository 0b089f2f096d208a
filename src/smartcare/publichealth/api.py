"""HTTP routes under /api/publichealth (thin layer over the Python API)."""

from fastapi import APIRouter, Request

router = APIRouter()


# ----------------------------------------------------------------------------- Rt and scoring
async def _payload(request: Request) -> tuple[dict, dict[str, bytes]]:
    """(fields, files) from a JSON body, a multipart form (files = uploads) or a text/csv body (file "csv").

    Query parameters are merged into the fields.
    """
    import json

    from smartcare.core.errors import SmartcareError

    fields: dict = dict(request.query_params)
    files: dict[str, bytes] = {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = json.loads(await request.body())
        except ValueError as err:
            raise SmartcareError(f"request body is not valid JSON: {err}") from err
        if not isinstance(body, dict):
            raise SmartcareError("the JSON body must be an object")
        fields.update(body)
    elif kind == "multipart/form-data":
        form = await request.form()
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                files[key] = await value.read()
            else:
                fields[key] = value
    elif kind in ("text/csv", "text/plain"):
        files["csv"] = await request.body()
    else:
        raise SmartcareError("send JSON, a multipart form with CSV files, or a text/csv body")
    return fields, files


def _csv(data: bytes, name: str):
    import io

    import pandas as pd

    from smartcare.core.errors import SmartcareError

    try:
        return pd.read_csv(io.BytesIO(data), dtype={"location": str})
    except (ValueError, UnicodeDecodeError) as err:
        raise SmartcareError(f"uploaded {name} is not a readable CSV: {err}") from err


def _number(fields: dict, name: str, default=None, kind=float):
    from smartcare.core.errors import SmartcareError

    value = fields.get(name, default)
    if value is None or value == "":
        return default
    try:
        return kind(value)
    except (TypeError, ValueError) as err:
        raise SmartcareError(f"field {name!r} must be a number; got {value!r}") from err


def _numbers(fields: dict, name: str, kind=float) -> list | None:
    """A list of numbers from a JSON list or a comma-separated form field (None when absent)."""
    from smartcare.core.errors import SmartcareError

    values = _vector(fields.get(name))
    if values is None:
        return None
    if not isinstance(values, list):
        raise SmartcareError(f"field {name!r} must be a list of numbers")
    return [_number({name: v}, name, kind=kind) for v in values]


def _vector(value):
    """A list from JSON, or from a comma-separated form field."""
    if isinstance(value, str):
        return [v for v in value.replace(";", ",").split(",") if v.strip()]
    return value


def _records(df) -> list[dict]:
    import json

    out = df.copy()
    for col in out.columns:
        if str(out[col].dtype).startswith("datetime"):
            out[col] = out[col].dt.strftime("%Y-%m-%d")
    return json.loads(out.to_json(orient="records", double_precision=15))


def _body_doc(json_example: dict, files: list[str]) -> dict:
    """OpenAPI request body for routes that parse JSON, multipart uploads or a text/csv body themselves."""
    upload = {"type": "string", "format": "binary"}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object"}, "example": json_example},
        "multipart/form-data": {"schema": {"type": "object", "properties": {f: upload for f in files}}},
        "text/csv": {"schema": {"type": "string"}},
    }}}


@router.post("/rt", openapi_extra=_body_doc({"incidence": [1, 2, 4, 6, 9, 12, 15, 20, 24], "mean_si": 2.6,
                                             "std_si": 1.5, "window": 7}, ["incidence", "si_distr"]))
async def estimate_rt(request: Request) -> dict:
    """Rt on sliding windows (Cori et al. 2013, as EpiEstim 2.2-4 estimate_R).

    JSON: ``{"incidence": [...]}`` or ``{"local": [...], "imported": [...]}``, optional ``dates``, and
    ``mean_si``/``std_si`` (parametric SI) or ``si_distr`` (list, w[0] = 0); optional ``window`` (7),
    ``t_start``/``t_end``, ``mean_prior``/``std_prior`` (5, 5). Multipart: file ``incidence`` (CSV),
    optional file ``si_distr`` (CSV column w), the same scalar fields. text/csv: incidence CSV body,
    fields as query parameters. Returns the SI used, warnings and one estimate per window.
    """
    import io
    import warnings

    from smartcare.core.errors import SmartcareError
    from smartcare.publichealth import rt

    fields, files = await _payload(request)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rt.RtWarning)
        table = files.get("incidence", files.get("csv"))
        if table is not None:
            inc = rt.make_incidence(_csv(table, "incidence"))
        elif fields.get("incidence") is not None:
            inc = rt.make_incidence(_vector(fields["incidence"]), dates=fields.get("dates"))
        elif fields.get("local") is not None or fields.get("imported") is not None:
            inc = rt.make_incidence(None, _vector(fields.get("local")), _vector(fields.get("imported")),
                                    dates=fields.get("dates"))
        else:
            raise SmartcareError("give the incidence: list 'incidence', lists 'local' and 'imported', or CSV")
        if "si_distr" in files:
            si = {"method": "non_parametric_si", "si_distr": rt.read_si_distr(io.BytesIO(files["si_distr"]))}
        elif fields.get("si_distr") is not None:
            si = {"method": "non_parametric_si", "si_distr": _numbers(fields, "si_distr")}
        else:
            si = {"method": "parametric_si", "mean_si": _number(fields, "mean_si"),
                  "std_si": _number(fields, "std_si")}
        est = rt.estimate_r(
            inc, **si, window=_number(fields, "window", 7, int),
            t_start=_numbers(fields, "t_start", int), t_end=_numbers(fields, "t_end", int),
            mean_prior=_number(fields, "mean_prior", 5.0), std_prior=_number(fields, "std_prior", 5.0),
        )
    method = si.pop("method")
    used = rt.si_distribution(method, inc.local.size, **si)
    return {"method": method,
            "si_distr": used.tolist(), "warnings": [str(w.message) for w in caught],
            "estimates": _records(est)}


_SCORE_EXAMPLE = {"forecasts": [], "targets": [], "baseline_model": "FluSight-baseline"}


@router.post("/score", openapi_extra=_body_doc(_SCORE_EXAMPLE, ["forecasts", "targets", "baseline"]))
async def score_forecasts(request: Request) -> dict:
    """WIS, 50%/95% coverage and relative WIS (natural and log1p) of quantile forecasts.

    JSON: ``{"forecasts": [rows], "targets": [rows], "baseline": [rows]?, "baseline_model": str?,
    "exclude_locations": [str]?}`` with hubverse long (or FluSight wide) forecast rows and target rows
    ``date, location, value``. Multipart: files ``forecasts``, ``targets``, optional ``baseline`` (CSV),
    optional fields ``baseline_model`` and ``exclude_locations`` (comma-separated).
    Returns ``summary`` (one row per model) and ``scores`` (one row per forecast).
    """
    import pandas as pd

    from smartcare.core.errors import SmartcareError
    from smartcare.publichealth import hub, scoring

    fields, files = await _payload(request)

    def table(name: str, required: bool = True):
        if name in files:
            return _csv(files[name], name)
        rows = fields.get(name)
        if rows is None:
            if required:
                raise SmartcareError(f"give {name!r} as a list of rows (JSON) or a CSV file (multipart)")
            return None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise SmartcareError(f"{name!r} must be a list of objects (one per row)")
        frame = pd.DataFrame(rows)
        if "location" in frame.columns:
            frame["location"] = frame["location"].astype(str)
        return frame

    forecasts, targets, baseline = table("forecasts"), table("targets"), table("baseline", False)
    exclude = _vector(fields.get("exclude_locations")) or []
    scores, summary = scoring.evaluate(
        hub.forecasts_from_table(forecasts), targets,
        None if baseline is None else hub.forecasts_from_table(baseline),
        baseline_model=fields.get("baseline_model") or None,
        subset=scoring.EvaluationSubset(tuple(str(x) for x in exclude)),
    )
    return {"summary": _records(summary), "scores": _records(scores)}


# ----------------------------------------------------------------------------- aberration detection
_DETECT_EXAMPLE = {"method": "ears-c1", "series": [{"date": "2024-01-01", "observed": 3}], "from": None}


@router.post("/detect", openapi_extra=_body_doc(_DETECT_EXAMPLE, ["series"]))
async def detect_outbreaks(request: Request) -> dict:
    """Outbreak detection as R surveillance 1.20.3 (earsC C1-C3, farringtonFlexible, cusum).

    JSON: ``{"method": name, "series": [{"date", "observed", "population"?, "location"?}, ...],
    "from"?: date, "to"?: date}`` (or ``"dates"`` + ``"observed"`` lists instead of ``series``).
    Multipart: file ``series`` (CSV) and fields ``method``, ``from``, ``to``. text/csv: the series CSV
    as body, fields as query parameters. Methods: ears-c1, ears-c2, ears-c3, farrington,
    farrington-noufaily, cusum. Returns one row per location and judged week:
    ``date, location, observed, upperbound, alarm, score``.
    """
    import pandas as pd

    from smartcare.core.errors import SmartcareError
    from smartcare.publichealth.aberration.methods import detect_frame

    fields, files = await _payload(request)
    upload = files.get("series", files.get("csv"))
    if upload is not None:
        table = _csv(upload, "series")
    elif isinstance(fields.get("series"), list) and all(isinstance(r, dict) for r in fields["series"]):
        table = pd.DataFrame(fields["series"])
    elif fields.get("observed") is not None and fields.get("dates") is not None:
        table = pd.DataFrame({"date": _vector(fields["dates"]), "observed": _vector(fields["observed"])})
    else:
        raise SmartcareError("give 'series' as a list of {date, observed} rows, 'dates' + 'observed', or a CSV")
    if table.empty:
        raise SmartcareError("the series has no rows")
    method = fields.get("method")
    if not method:
        raise SmartcareError("give 'method': ears-c1, ears-c2, ears-c3, farrington, farrington-noufaily or cusum")
    alarms, _ = detect_frame(table, str(method), fields.get("from") or None, fields.get("to") or None)
    return {"method": method, "n_alarms": int(alarms["alarm"].sum()), "alarms": _records(alarms)}


# ----------------------------------------------------------------------------- forecasting
_FORECAST_EXAMPLE = {"reference_date": "2024-01-06", "model": "gbm-global",
                     "targets": [{"date": "2023-12-30", "location": "01", "value": 120}]}


@router.post("/forecast", openapi_extra=_body_doc(_FORECAST_EXAMPLE, ["targets"]))
async def forecast_counts(request: Request) -> dict:
    """Quantile forecasts (23 FluSight levels, horizons 0-3, target ``wk inc flu hosp``).

    JSON: ``{"targets": [{"date", "location", "value", "weekly_rate"?}, ...], "reference_date": date,
    "model"?: "gbm-global" | "flusight-baseline"}``. Multipart: file ``targets`` (CSV) and fields
    ``reference_date``, ``model``. text/csv: the targets CSV as body, fields as query parameters.
    Only target rows dated before ``reference_date`` are used. Returns hubverse long rows.
    """
    import pandas as pd

    from smartcare.core.errors import SmartcareError
    from smartcare.publichealth.forecast import DEFAULT_MODEL, forecast

    fields, files = await _payload(request)
    upload = files.get("targets", files.get("csv"))
    if upload is not None:
        table = _csv(upload, "targets")
    elif isinstance(fields.get("targets"), list) and all(isinstance(r, dict) for r in fields["targets"]):
        table = pd.DataFrame(fields["targets"])
        if "location" in table.columns:
            table["location"] = table["location"].astype(str)
    else:
        raise SmartcareError("give 'targets' as a list of {date, location, value} rows or a CSV file")
    if not fields.get("reference_date"):
        raise SmartcareError("give 'reference_date' (YYYY-MM-DD)")
    model = str(fields.get("model") or DEFAULT_MODEL)
    fc = forecast(table, fields["reference_date"], model)
    return {"model": model, "reference_date": str(fields["reference_date"]), "forecasts": _records(fc)}
