package config

import (
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a configuration file, located precisely
// enough that whoever edits the file can go straight to it.
type Problem struct {
	File  string
	Line  int    // 1-based; 0 when the problem has no line (an empty file)
	Field string // YAML path, e.g. "segments[1].dhcp.range"; empty for the file as a whole
	Msg   string
}

// String formats the problem as "file:line: field: msg", leaving out the parts
// it does not have.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is every problem Parse found in a file. Reporting them all at once
// saves the network manager an edit-and-retry round per mistake.
type Error struct {
	Problems []Problem
}

// Error joins the problems one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems puts problems in file order, so the report reads top to bottom
// even though cross-field checks run after the walk.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return a.Line - b.Line })
}

// suggest returns the candidate nearest to word by edit distance, if it is
// near enough to be a plausible typo.
func suggest(word string, candidates []string) (string, bool) {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(word), c)
		if bestDist < 0 || d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	// A third of the word (at least 2) catches doubled letters, swaps and
	// dropped underscores without proposing unrelated keys.
	limit := max(2, len(word)/3)
	if bestDist < 0 || bestDist > limit {
		return "", false
	}
	return best, true
}

// editDistance is the Levenshtein distance between a and b, over bytes
// (keys are ASCII; a non-ASCII key is far from all of them anyway).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
