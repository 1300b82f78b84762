package policy

import (
	"maps"
	"slices"
)

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
