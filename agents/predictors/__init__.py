"""Failure predictors that read observations only: sensor histories, operating hours, loads and
maintenance records (:mod:`twin.fleet.observe`). ``dataset`` turns ``twin fleet-data`` folders
into windows and labels, ``lstm`` is the recurrent predictor, ``baselines`` the Weibull,
threshold and logistic-regression baselines, ``evaluate`` the metrics."""
