package alert

import (
	"testing"
	"time"
)

// FuzzParseSchedule: any text either parses to a schedule whose next time
// is in the future, or is refused; it never panics.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"weekly Mon 07:30", "daily 16:00", "weekly monday 7:30", "weekly Sun 23:59", "daily 24:00", "", "weekly", "monthly 1 07:30"} {
		f.Add(s)
	}
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		loc = time.UTC
	}
	from := time.Date(2026, 10, 24, 12, 0, 0, 0, loc)
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseSchedule(s, loc)
		if err != nil {
			return
		}
		if next := sc.Next(from); !next.After(from) || next.Sub(from) > 8*24*time.Hour {
			t.Fatalf("%q: next %v from %v", s, next, from)
		}
	})
}
