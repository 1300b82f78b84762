package web

import "strconv"

// Plural writes a count with its noun in the right number: "1 device",
// "0 devices", "3 devices". Every page that prints a count says it this
// way, so no page shows "1 devices".
func Plural(n int, one, many string) string {
	if n == 1 || n == -1 {
		return strconv.Itoa(n) + " " + one
	}
	return strconv.Itoa(n) + " " + many
}
