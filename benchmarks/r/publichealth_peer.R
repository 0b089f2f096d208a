## publichealth_peer.R -- the R side of benchmarks/publichealth_vs_r.py (written for smartcare).
## Usage: TZ=UTC Rscript publichealth_peer.R <shared publichealth folder> <out folder>
## Runs, on the same inputs smartcare reads:
##   1. EARS C1/C2/C3 and farringtonFlexible (default and Noufaily config) over the 300 simulated series,
##      range = weeks 573..624, timing each detector family separately;
##   2. estimate_R on every EpiEstim dataset with an SI given as parameters or as a distribution.
## Writes sim_detectors.csv (scenario, rep, t, method, upperbound, alarm), rt.csv and timings.csv.
suppressMessages({library(surveillance); library(EpiEstim)})
args <- commandArgs(trailingOnly = TRUE)
ROOT <- args[1]; OUT <- args[2]; dir.create(OUT, FALSE, TRUE)
timings <- data.frame()
add_time <- function(label, secs) timings <<- rbind(timings, data.frame(call = label, seconds = secs))

## 1. detectors on the simulated set
ser <- read.csv(file.path(ROOT, "simulated_outbreaks", "noufaily_style_series_dev_seed20240601.csv"))
con.noufaily <- list(noPeriods = 10, b = 4, w = 3, weightsThreshold = 2.58, pastWeeksNotIncluded = 26,
                     pThresholdTrend = 1, thresholdMethod = "nbPlugin", alpha = 0.05)
rng <- 573:624
keys <- unique(ser[, c("scenario", "rep")])
mk <- function(S) sts(observed = S$observed, epoch = as.numeric(as.Date(S$date)), epochAsDate = TRUE, frequency = 52)
res <- list(); tt <- c(ears = 0, farrington = 0, noufaily = 0)
for (i in seq_len(nrow(keys))) {
  S <- ser[ser$scenario == keys$scenario[i] & ser$rep == keys$rep[i], ]
  s <- mk(S)
  one <- function(fit, method) data.frame(scenario = S$scenario[1], rep = S$rep[1], t = rng, method = method,
                                          upperbound = as.vector(upperbound(fit)), alarm = as.integer(alarms(fit)))
  t0 <- proc.time()[["elapsed"]]
  for (m in c("C1", "C2", "C3")) res[[length(res) + 1]] <- one(earsC(s, control = list(method = m, range = rng)), paste0("ears-", tolower(m)))
  t1 <- proc.time()[["elapsed"]]
  res[[length(res) + 1]] <- one(suppressWarnings(farringtonFlexible(s, control = list(range = rng))), "farrington")
  t2 <- proc.time()[["elapsed"]]
  res[[length(res) + 1]] <- one(suppressWarnings(farringtonFlexible(s, control = c(con.noufaily, list(range = rng)))), "farrington-noufaily")
  t3 <- proc.time()[["elapsed"]]
  tt <- tt + c(t1 - t0, t2 - t1, t3 - t2)
}
write.csv(do.call(rbind, res), file.path(OUT, "sim_detectors.csv"), row.names = FALSE)
add_time("earsC C1-C3, 300 series", tt[["ears"]])
add_time("farringtonFlexible default, 300 series", tt[["farrington"]])
add_time("farringtonFlexible Noufaily, 300 series", tt[["noufaily"]])

## 2. estimate_R on every EpiEstim dataset
ee <- file.path(ROOT, "epiestim_datasets")
inc1 <- function(name) read.csv(file.path(ee, paste0(name, "_incidence.csv")))$I
sid <- function(name) read.csv(file.path(ee, paste0(name, "_si_distr.csv")))$w
mers <- read.csv(file.path(ee, "mers_2014_15_incidence.csv"))
mers_si <- read.csv(file.path(ee, "mers_2014_15_si_params.csv"))
runs <- list(
  list("Flu1918_non_parametric_si", inc1("Flu1918"), "non_parametric_si", list(si_distr = sid("Flu1918"))),
  list("Flu2009_parametric_si", inc1("Flu2009"), "parametric_si", list(mean_si = 2.6, std_si = 1.5)),
  list("Flu2009_non_parametric_si", inc1("Flu2009"), "non_parametric_si", list(si_distr = sid("Flu2009"))),
  list("SARS2003_non_parametric_si", inc1("SARS2003"), "non_parametric_si", list(si_distr = sid("SARS2003"))),
  list("Measles1861_parametric_si", inc1("Measles1861"), "parametric_si", list(mean_si = 14.9, std_si = 3.9)),
  list("Measles1861_non_parametric_si", inc1("Measles1861"), "non_parametric_si", list(si_distr = sid("Measles1861"))),
  list("Smallpox1972_non_parametric_si", inc1("Smallpox1972"), "non_parametric_si", list(si_distr = sid("Smallpox1972"))),
  list("MERS2014_15_local_imported", data.frame(local = mers$local, imported = mers$imported), "parametric_si",
       list(mean_si = mers_si$mean_si[1], std_si = mers_si$std_si[1])))
out <- list(); t_all <- 0
for (r in runs) {
  t0 <- proc.time()[["elapsed"]]
  for (k in 1:20) fit <- suppressWarnings(estimate_R(r[[2]], method = r[[3]], config = make_config(r[[4]])))
  t_all <- t_all + (proc.time()[["elapsed"]] - t0) / 20
  d <- fit$R; names(d) <- make.names(names(d)); out[[r[[1]]]] <- data.frame(run = r[[1]], d)
}
write.csv(do.call(rbind, out), file.path(OUT, "rt.csv"), row.names = FALSE)
add_time("estimate_R, all datasets (mean of 20 repetitions)", t_all)
write.csv(timings, file.path(OUT, "timings.csv"), row.names = FALSE)
cat("done\n")
