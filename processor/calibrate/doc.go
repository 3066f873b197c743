// Package calibrate fits a customer base's purchase history to the
// buy-till-you-die count models (BG/NBD, MBG/NBD, Pareto/NBD) and
// Gamma-Gamma, and derives a calibrated scoring policy from the base one:
// RFM boundaries at the quintiles of the data, the fitted models, and value
// class thresholds from the customers' CLV at the calibration end.
//
// The input is either a file of transactions (ReadCSV, through txcsv) or a
// state directory's per-customer summaries (ReadState). A state keeps
// totals, not the time of each purchase, so its calibration end cannot be
// before any customer's last purchase and it has no holdout period; a file
// can be cut anywhere, and the repeat purchases after the calibration end
// check the models' conditional expectations (the report's holdout and
// weekly tracking).
//
// Run takes validated Options and returns a Result: the Report (JSON field
// names are an output format), the calibrated policy, validated, and its
// model. Run writes nothing; WritePolicy, WriteScores and HTML produce the
// files a caller chooses to write, and Report.WriteText prints the report.
package calibrate
