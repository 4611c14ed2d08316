// Package learning trains models for netfeat in pure Go and watches the
// models that score: an L2-regularised logistic regression over a view's
// windowed features (Logistic, the `logistic` model kind of package
// inference), the reference profile of a version's training features
// (Profile: per-feature quantile bins) and the population stability index
// (PSI) that compares recent windows with it, the classification metrics
// and promotion Gate of a candidate version, and the retraining Loop that
// exports labelled windows, trains, shadows and promotes. See
// docs/learning.md.
package learning

import (
	"errors"
	"fmt"
	"math"
)

// ErrBadInput is wrapped by every *InputError: a training set the trainer
// refuses.
var ErrBadInput = errors.New("bad training input")

// Reasons of an InputError, the label of netfeat_learning_rejected_total.
const (
	ReasonNonFinite    = "non_finite"    // a NaN or ±Inf feature value
	ReasonFeatureCount = "feature_count" // a row with another number of features than names
	ReasonOneClass     = "one_class"     // every label is 0, or every label is 1
	ReasonLabel        = "label"         // a label other than 0 or 1
	ReasonTooFew       = "too_few"       // fewer rows than the trainer needs
	ReasonNames        = "names"         // no feature names, or one twice
)

// InputError says why a training set was refused and where.
type InputError struct {
	// Reason is one of the Reason* constants.
	Reason string
	// Msg says what was found, naming the row and feature.
	Msg string
}

func (e *InputError) Error() string { return fmt.Sprintf("%s: %s", ErrBadInput, e.Msg) }

// Unwrap makes errors.Is(err, ErrBadInput) hold.
func (e *InputError) Unwrap() error { return ErrBadInput }

// Reason returns the reason of an *InputError in err's chain, or "".
func Reason(err error) string {
	var ie *InputError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}

func inputErr(reason, format string, args ...any) error {
	return &InputError{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Dataset is a binary classification training set: N rows of the features
// named by Names, row-major in X (row i is X[i*d : (i+1)*d], d =
// len(Names)), with the label of row i (0 or 1) in Y[i].
type Dataset struct {
	Names []string
	X     []float64
	Y     []float64
}

// Len returns the number of rows.
func (ds *Dataset) Len() int { return len(ds.Y) }

// Row returns row i's features (a sub-slice of X).
func (ds *Dataset) Row(i int) []float64 {
	d := len(ds.Names)
	return ds.X[i*d : (i+1)*d : (i+1)*d]
}

// Add appends a row. It refuses a row with another number of values than
// Names, a non-finite value or a label other than 0 and 1, with an
// *InputError, and leaves the set unchanged.
func (ds *Dataset) Add(x []float64, y float64) error {
	if len(x) != len(ds.Names) {
		return inputErr(ReasonFeatureCount, "row %d has %d features, want %d (%v)", ds.Len()+1, len(x), len(ds.Names), ds.Names)
	}
	for j, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return inputErr(ReasonNonFinite, "row %d: feature %s is %v", ds.Len()+1, ds.Names[j], v)
		}
	}
	if y != 0 && y != 1 {
		return inputErr(ReasonLabel, "row %d: label %v, want 0 or 1", ds.Len()+1, y)
	}
	ds.X = append(ds.X, x...)
	ds.Y = append(ds.Y, y)
	return nil
}

// Validate checks the whole set: names present and distinct, len(X) =
// len(Y)·len(Names), every value finite, every label 0 or 1, at least
// minRows rows and both classes present. It returns an *InputError (which
// wraps ErrBadInput) for the first problem found.
func (ds *Dataset) Validate(minRows int) error {
	d := len(ds.Names)
	if d == 0 {
		return inputErr(ReasonNames, "no feature names")
	}
	seen := make(map[string]bool, d)
	for _, n := range ds.Names {
		if n == "" || seen[n] {
			return inputErr(ReasonNames, "feature name %q empty or given twice", n)
		}
		seen[n] = true
	}
	if len(ds.X) != len(ds.Y)*d {
		return inputErr(ReasonFeatureCount, "%d values for %d rows of %d features", len(ds.X), len(ds.Y), d)
	}
	if ds.Len() < minRows {
		return inputErr(ReasonTooFew, "%d rows, need at least %d", ds.Len(), minRows)
	}
	for k, v := range ds.X {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return inputErr(ReasonNonFinite, "row %d: feature %s is %v", k/d+1, ds.Names[k%d], v)
		}
	}
	pos := 0
	for i, y := range ds.Y {
		switch y {
		case 1:
			pos++
		case 0:
		default:
			return inputErr(ReasonLabel, "row %d: label %v, want 0 or 1", i+1, y)
		}
	}
	if pos == 0 || pos == ds.Len() {
		return inputErr(ReasonOneClass, "all %d labels are %d: a classifier needs both classes", ds.Len(), min(pos, 1))
	}
	return nil
}

// Split returns the first ⌈(1−holdout)·N⌉ rows and the rest, sharing
// ds's arrays. With rows in time order the held-out part is the most
// recent.
func (ds *Dataset) Split(holdout float64) (train, test Dataset) {
	n := ds.Len()
	k := n - int(math.Floor(holdout*float64(n)))
	d := len(ds.Names)
	train = Dataset{Names: ds.Names, X: ds.X[:k*d], Y: ds.Y[:k]}
	test = Dataset{Names: ds.Names, X: ds.X[k*d:], Y: ds.Y[k:]}
	return train, test
}
