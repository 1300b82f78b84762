package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder walks a yaml.Node tree, collecting problems instead of stopping at
// the first one, and remembering the line of every field it sees.
type decoder struct {
	file  string
	probs []Problem
	lines map[string]int
	// troubled holds every field with a problem and every path above it,
	// so that a field already reported is not reported again as missing.
	troubled map[string]bool
	// misspelt holds paths of known keys the file wrote with a typo, and
	// exact the fields problems were reported about.
	misspelt, exact map[string]bool
	// visits counts map entries and list items walked, aliases and merge
	// keys included; past maxVisits the walk stops (see visit).
	visits  int
	aborted bool
}

// maxVisits bounds the walk. A real file has a few hundred entries; YAML
// aliases let a small hostile file name the same large block many times.
const maxVisits = 200_000

// maxProblems stops a report that would be too long to read anyway.
const maxProblems = 500

// visit counts one entry and reports whether the walk may go on.
func (d *decoder) visit(line int) bool {
	if d.aborted {
		return false
	}
	d.visits++
	if d.visits > maxVisits {
		if !d.aborted {
			d.aborted = true
			d.problemf(line, "", "too many entries (more than %d, counting repeats through YAML aliases); stopped reading here", maxVisits)
		}
		return false
	}
	return true
}

func (d *decoder) problemf(line int, field, format string, args ...any) {
	if len(d.probs) >= maxProblems {
		if !d.aborted {
			d.aborted = true
			d.probs = append(d.probs, Problem{File: d.file, Line: line, Msg: fmt.Sprintf("more than %d problems; stopped reading here", maxProblems)})
		}
		return
	}
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
	d.troubled[field] = true
	d.exact[field] = true
	for i := range len(field) {
		if field[i] == '.' || field[i] == '[' {
			d.troubled[field[:i]] = true
		}
	}
}

// explained reports whether field's absence is already accounted for: a
// problem was reported about it or inside it, or it or a section holding it
// was misspelt or reported as malformed.
func (d *decoder) explained(field string) bool {
	if d.troubled[field] || d.misspelt[field] {
		return true
	}
	for i := range len(field) {
		if a := field[:i]; (field[i] == '.' || field[i] == '[') && (d.misspelt[a] || d.exact[a]) {
			return true
		}
	}
	return false
}

// at reports a problem about the field at path, on the line it was read from.
func (d *decoder) at(path, format string, args ...any) {
	d.problemf(d.lines[path], path, format, args...)
}

// fieldFunc decodes the value of one known key.
type fieldFunc func(path string, v *yaml.Node)

// maxMergeDepth bounds "<<" merge-key chains. YAML anchors can refer to
// themselves, so an unbounded walk could loop forever.
const maxMergeDepth = 8

// maxListLen and maxMapLen bound lists and named maps. No school has more
// segments than VLAN ids; the bound keeps the pairwise overlap checks cheap
// on hostile input.
const (
	maxListLen = 4094
	maxMapLen  = 4094
)

// resolve follows aliases. A chain of aliases cannot loop (an alias names an
// anchor defined before it), but the depth is bounded anyway.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// pair is one key: value of a mapping after merge keys are expanded.
type pair struct {
	key, value *yaml.Node
}

// pairs lists the entries of a mapping, expanding "<<" merge keys so that
// segments can share a block through an anchor. Explicit keys come last, so
// they win over merged ones when the caller keeps the last value of a key.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var merged, own []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.visit(k.Line) {
			return nil
		}
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			if depth >= maxMergeDepth {
				d.problemf(k.Line, path, "merge keys (<<) nested too deeply")
				continue
			}
			v = resolve(v)
			var sources []*yaml.Node
			switch {
			case v != nil && v.Kind == yaml.MappingNode:
				sources = []*yaml.Node{v}
			case v != nil && v.Kind == yaml.SequenceNode:
				for _, s := range v.Content {
					sources = append(sources, resolve(s))
				}
			}
			for _, s := range sources {
				if s == nil || s.Kind != yaml.MappingNode {
					d.problemf(k.Line, path, "merge key (<<) must refer to a mapping")
					continue
				}
				merged = append(merged, d.pairs(s, path, depth+1)...)
			}
			if len(sources) == 0 {
				d.problemf(k.Line, path, "merge key (<<) must refer to a mapping")
			}
			continue
		}
		own = append(own, pair{k, v})
	}
	// Explicit keys override merged ones, and among merged sources the first
	// one wins (YAML merge semantics); what remains has no key twice unless
	// the file itself wrote a key twice.
	ownKeys := map[string]bool{}
	for _, p := range own {
		ownKeys[p.key.Value] = true
	}
	seen := map[string]bool{}
	var out []pair
	for _, p := range merged {
		if k := p.key.Value; !ownKeys[k] && !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return append(out, own...)
}

// mapping decodes a mapping whose keys are known in advance. It reports
// unknown keys (with the nearest known one), duplicate keys and a value that
// is not a mapping, and returns which keys were present. A null value counts
// as an empty mapping, so "admin:" alone means "all defaults".
func (d *decoder) mapping(n *yaml.Node, path string, fields map[string]fieldFunc) map[string]bool {
	present := map[string]bool{}
	n = resolve(n)
	if isNull(n) {
		return present
	}
	if n.Kind != yaml.MappingNode {
		d.problemf(n.Line, path, "must be a mapping of keys to values, not %s", describe(n))
		return present
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)

	ps := d.pairs(n, path, 0)
	keyLine := map[string]int{}
	for _, p := range ps {
		if !d.visit(p.key.Line) {
			return present
		}
		if p.key.Kind != yaml.ScalarNode {
			d.problemf(p.key.Line, path, "keys must be plain words, not %s", describe(p.key))
			continue
		}
		key := p.key.Value
		fpath := join(path, key)
		fn, ok := fields[key]
		if !ok {
			if s, ok := suggest(key, names); ok {
				d.problemf(p.key.Line, fpath, "unknown key; did you mean %q?", s)
				// The misspelt key is the report; the key it was meant
				// to be is not also "required".
				if !present[s] {
					d.misspelt[join(path, s)] = true
				}
			} else {
				d.problemf(p.key.Line, fpath, "unknown key; expected one of %s", strings.Join(names, ", "))
			}
			continue
		}
		if prev, dup := keyLine[key]; dup {
			d.problemf(p.key.Line, fpath, "duplicate key; already set on line %d", prev)
			continue
		}
		keyLine[key] = p.key.Line
		present[key] = true
		d.lines[fpath] = valueLine(p)
		fn(fpath, p.value)
	}
	return present
}

func valueLine(p pair) int {
	if v := resolve(p.value); v != nil && v.Line > 0 && v.Kind == yaml.ScalarNode {
		return v.Line
	}
	return p.key.Line
}

// describe names the kind of a node for messages ("a list", "a mapping").
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an unexpected YAML node"
}

// str decodes a scalar as a string; null gives "".
func (d *decoder) str(path string, n *yaml.Node) (string, bool) {
	n = resolve(n)
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		d.at(path, "must be a single value, not %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// boolean decodes true/false; null leaves def.
func (d *decoder) boolean(path string, n *yaml.Node, def bool) bool {
	n = resolve(n)
	if isNull(n) {
		return def
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		d.at(path, "must be true or false, not %s", describe(n))
		return def
	}
	return b
}

// integer decodes a whole number; null gives (0, false) without a problem.
func (d *decoder) integer(path string, n *yaml.Node) (int, bool) {
	n = resolve(n)
	if isNull(n) {
		return 0, false
	}
	var i int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		d.at(path, "must be a whole number, not %s", describe(n))
		return 0, false
	}
	return i, true
}

// list calls each for every item of a sequence; null is an empty list.
func (d *decoder) list(path string, n *yaml.Node, each func(i int, path string, item *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.at(path, "must be a list, not %s", describe(n))
		return
	}
	if len(n.Content) > maxListLen {
		d.at(path, "has %d entries; at most %d are allowed", len(n.Content), maxListLen)
		return
	}
	for i, item := range n.Content {
		if !d.visit(item.Line) {
			return
		}
		ipath := fmt.Sprintf("%s[%d]", path, i)
		if r := resolve(item); r != nil {
			d.lines[ipath] = r.Line
		}
		each(i, ipath, item)
	}
}

// strList decodes a list of single values.
func (d *decoder) strList(path string, n *yaml.Node, each func(path, s string)) {
	d.list(path, n, func(_ int, ipath string, item *yaml.Node) {
		if s, ok := d.str(ipath, item); ok {
			each(ipath, s)
		}
	})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data into the root node of its only YAML document.
func (d *decoder) document(data []byte) (root *yaml.Node) {
	// yaml.v3 reports syntax errors by panicking internally and recovering;
	// a panic that escapes it is a parser bug, and a bad file must not take
	// the daemon down with it.
	defer func() {
		if r := recover(); r != nil {
			d.problemf(0, "", "YAML parser failed: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.problemf(0, "", "file is empty; it needs at least site, database and segments")
		} else {
			d.syntax(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.problemf(extra.Line, "", "file holds more than one YAML document (a second \"---\"); Gatehouse reads one")
	case !errors.Is(err, io.EOF):
		d.syntax(err)
	}
	if len(doc.Content) == 0 {
		d.problemf(doc.Line, "", "file is empty; it needs at least site, database and segments")
		return nil
	}
	return doc.Content[0]
}

func (d *decoder) syntax(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.problemf(line, "", "not valid YAML: %s", m[2])
		return
	}
	d.problemf(0, "", "not valid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}
