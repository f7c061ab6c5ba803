"""Reports: the record of a training run (run_report) and the static catalog site."""
