package inspect

import (
	"fmt"
	"slices"
	"strings"
)

// Confidence says how sure a finding is, so that heuristics can be enabled
// without drowning the DSL: findings below a class's threshold
// (Options.MinConfidence) are counted and dropped.
type Confidence string

// Confidence levels, weakest first.
const (
	// Attempt: recognised from the client's side alone; the server never
	// answered (blocked, filtered, closed or gone). A pupil retrying a
	// blocked VPN is exactly this.
	Attempt Confidence = "attempt"
	// Likely: a fingerprint or heuristic: a listed name, address or JA4,
	// the statistics of random-looking bytes, a shape of record sizes.
	Likely Confidence = "likely"
	// Certain: a protocol handshake was parsed, usually with the server's
	// answer matching the client's request.
	Certain Confidence = "certain"
)

// Confidences lists the levels, weakest first.
var Confidences = []Confidence{Attempt, Likely, Certain}

// rank orders the levels; an unknown level ranks below all.
func (c Confidence) rank() int { return slices.Index(Confidences, c) }

// AtLeast reports whether c is at least min.
func (c Confidence) AtLeast(min Confidence) bool { return c.rank() >= min.rank() }

// ParseConfidence reads a level's name.
func ParseConfidence(s string) (Confidence, error) {
	c := Confidence(strings.ToLower(strings.TrimSpace(s)))
	if c.rank() < 0 {
		return "", fmt.Errorf("confidence %q is not one of attempt, likely, certain", s)
	}
	return c, nil
}

// MinConfidenceDefault is the key of MinConfidence that applies to every
// class not named.
const MinConfidenceDefault = "default"

// CheckMinConfidence validates a per-class threshold map: each key is a
// class (or "default") and each value a level.
func CheckMinConfidence(m map[string]Confidence) error {
	for k, v := range m {
		if k != MinConfidenceDefault && !slices.Contains(Classes, k) {
			return fmt.Errorf("min_confidence: %q is not a finding class (one of %s, or %s)", k, strings.Join(Classes, ", "), MinConfidenceDefault)
		}
		if v.rank() < 0 {
			return fmt.Errorf("min_confidence: %s: %q is not one of attempt, likely, certain", k, v)
		}
	}
	return nil
}

// wanted reports whether a finding of class at confidence c passes the
// configured thresholds. Without a threshold everything passes.
func (e *Engine) wanted(class string, c Confidence) bool {
	min, ok := e.opt.MinConfidence[class]
	if !ok {
		min, ok = e.opt.MinConfidence[MinConfidenceDefault]
	}
	return !ok || c.AtLeast(min)
}
