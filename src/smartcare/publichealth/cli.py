"""`smartcare publichealth ...` commands (thin layer over the Python API)."""

import typer

from smartcare.core.cli import CommandApp

app = CommandApp(help="publichealth commands.", no_args_is_help=True)


@app.command("detect")
def detect_command(
    method: str = typer.Option(
        ..., "--method", help="ears-c1|ears-c2|ears-c3|farrington|farrington-noufaily|cusum."),
    input: str = typer.Option(..., "--input", help="CSV/Parquet: date, observed[, population][, location]."),
    out: str = typer.Option(..., "--out", help="Output CSV: date, location, observed, upperbound, ..."),
    date_from: str = typer.Option(None, "--from", help="First judged week (YYYY-MM-DD)."),
    date_to: str = typer.Option(None, "--to", help="Last judged week (YYYY-MM-DD)."),
    plot: str = typer.Option(None, "--plot", help="PNG: epidemic curve with threshold and alarms."),
):
    """Outbreak detection as R surveillance 1.20.3 (earsC, farringtonFlexible, cusum)."""
    from smartcare.publichealth.aberration.methods import detect_frame
    from smartcare.publichealth.series import read_table

    alarms, series = detect_frame(read_table(input), method, date_from, date_to)
    alarms.to_csv(out, index=False)
    if plot:
        from smartcare.publichealth.aberration.plot import plot_detection

        plot_detection(series, alarms, plot, title=method)
    n_alarm = int(alarms["alarm"].fillna(0).sum())
    typer.echo(f"{method}: {n_alarm} alarm(s) in {len(alarms)} judged week(s) "
               f"over {len(series)} location(s); wrote {out}")


@app.command("rt")
def rt_command(
    incidence: str = typer.Option(..., "--incidence", help="CSV: [dates,] I, or local, imported."),
    si_mean: float = typer.Option(None, "--si-mean", help="Mean serial interval in days (parametric SI)."),
    si_sd: float = typer.Option(None, "--si-sd", help="SD of the serial interval in days (parametric SI)."),
    si_distr: str = typer.Option(None, "--si-distr", help="CSV with column w: discrete SI, w[0] = 0."),
    window: int = typer.Option(7, "--window", help="Sliding window length in days."),
    mean_prior: float = typer.Option(5.0, "--mean-prior", help="Mean of the Gamma prior on R."),
    std_prior: float = typer.Option(5.0, "--std-prior", help="SD of the Gamma prior on R."),
    out: str = typer.Option(..., "--out", help="Output CSV of Rt per window."),
    plot: str = typer.Option(None, "--plot", help="PNG: Rt with 95% credible band, incidence."),
):
    """Estimate Rt on sliding windows (Cori et al. 2013; same numbers as EpiEstim 2.2-4 estimate_R)."""
    import warnings

    from smartcare.core.errors import SmartcareError
    from smartcare.publichealth import rt

    if si_distr is None and (si_mean is None or si_sd is None):
        raise SmartcareError("give --si-mean and --si-sd, or --si-distr")
    si = dict(method="non_parametric_si", si_distr=rt.read_si_distr(si_distr)) if si_distr else dict(
        method="parametric_si", mean_si=si_mean, std_si=si_sd)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rt.RtWarning)
        inc = rt.read_incidence(incidence)
        est = rt.estimate_r(inc, **si, window=window, mean_prior=mean_prior, std_prior=std_prior)
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    est.to_csv(out, index=False, date_format="%Y-%m-%d")
    if plot:
        rt.plot_rt(est, inc, plot)
    last = est.dropna(subset=["mean"]).tail(1)
    msg = f"wrote {len(est)} windows to {out}"
    if len(last):
        r = last.iloc[0]
        msg += (f"; last window [{int(r.t_start)}, {int(r.t_end)}]: R = {r['mean']:.3f} "
                f"(95% CrI {r['q0.025']:.3f}-{r['q0.975']:.3f})")
    typer.echo(msg)


@app.command("score")
def score_command(
    forecasts: str = typer.Option(..., "--forecasts", help="Quantile forecasts (hubverse long or wide)."),
    targets: str = typer.Option(..., "--targets", help="Target data CSV: date, location, value."),
    baseline: str = typer.Option(None, "--baseline", help="Baseline forecasts (one model) for relative WIS."),
    baseline_model: str = typer.Option(None, "--baseline-model", help="Or: model_id in --forecasts to use."),
    exclude_location: list[str] = typer.Option([], "--exclude-location", help="Leave out a location (US)."),
    out: str = typer.Option(..., "--out", help="Output CSV: one row of scores per forecast."),
):
    """Score forecasts: WIS (11 intervals + median), 50%/95% coverage, relative WIS (natural, log1p)."""
    from smartcare.publichealth import hub, scoring

    fc = hub.read_forecasts(forecasts)
    base = hub.read_forecasts(baseline) if baseline else None
    scores, summary = scoring.evaluate(fc, hub.read_targets(targets), base, baseline_model=baseline_model,
                                       subset=scoring.EvaluationSubset(tuple(exclude_location)))
    scores.to_csv(out, index=False, date_format="%Y-%m-%d")
    typer.echo(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


@app.command("forecast")
def forecast_command(
    targets: str = typer.Option(..., "--targets", help="Target data CSV/Parquet: date, location, value, ..."),
    reference_date: str = typer.Option(..., "--reference-date", help="Forecast date (YYYY-MM-DD, a Saturday)."),
    model: str = typer.Option(
        "gbm-global", "--model", help="flusight-baseline | gbm-global | gbm-global-ili | gbm-blend."),
    out: str = typer.Option(..., "--out", help="Output CSV/Parquet: hubverse long quantile forecasts."),
    plot: str = typer.Option(None, "--plot", help="PNG: fan chart with the observed line."),
):
    """Quantile forecasts (23 levels, horizons 0-3) of weekly counts, using only rows dated before the date."""
    from smartcare.publichealth import hub
    from smartcare.publichealth.forecast import forecast
    from smartcare.publichealth.forecast.data import read_targets

    table = read_targets(targets)
    fc = forecast(table, reference_date, model)
    hub.write_forecasts(fc, out)
    if plot:
        from smartcare.publichealth.forecast.plot import fan_chart

        fan_chart(fc, table, plot)
    typer.echo(f"{model}: {fc['location'].nunique()} location(s) x {fc['horizon'].nunique()} horizon(s) "
               f"for reference date {reference_date}; wrote {out}")
