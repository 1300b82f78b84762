package people

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Source is where one import reads its people: an LDAP directory, a
// OneRoster bundle directory, or CSV exports (a directory among Files is
// read as a OneRoster bundle). The first of LDAP, OneRoster and Files that
// is set is the one read.
type Source struct {
	Name      string // the import's name, recorded as the batch's source
	LDAP      *LDAPOptions
	OneRoster string // a directory holding users.csv, orgs.csv, ...
	Files     []string
	// Saved are the column mappings for CSV exports whose headers are not
	// one of the known shapes.
	Saved []SavedShape
}

// Read reads the source into one batch. Nothing is applied: the batch
// goes through Preview like any other.
func (src Source) Read(ctx context.Context) (Batch, error) {
	switch {
	case src.LDAP != nil:
		es, err := FetchLDAP(ctx, *src.LDAP)
		if err != nil {
			return Batch{}, err
		}
		return ParseLDAP(src.Name, es, *src.LDAP), nil
	case src.OneRoster != "":
		return ReadOneRosterDir(src.Name, src.OneRoster)
	}
	return ReadFiles(src.Name, src.Files, src.Saved)
}

// ReadOneRosterDir reads the OneRoster 1.1 CSV bundle in dir into a batch
// named name.
func ReadOneRosterDir(name, dir string) (Batch, error) {
	bundle, err := ReadOneRoster(os.DirFS(dir))
	if err != nil {
		return Batch{}, err
	}
	return ParseOneRoster(name, bundle, OneRosterOptions{})
}

// ReadFiles reads CSV exports, and OneRoster bundle directories, together
// into one batch named source: a school's pupils and staff often come as
// separate exports, and a leaver is only a leaver if no file names them.
// A CSV is recognised by its headers or through saved.
func ReadFiles(source string, files []string, saved []SavedShape) (Batch, error) {
	var bs []Batch
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.IsDir() {
			b, err := ReadOneRosterDir(f, f)
			if err != nil {
				return Batch{}, err
			}
			bs = append(bs, b)
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			return Batch{}, err
		}
		data, err := ReadBounded(fh, MaxFileBytes)
		fh.Close()
		if err != nil {
			return Batch{}, fmt.Errorf("%s: %w", f, err)
		}
		b, err := ParseCSV(f, data, saved)
		if err != nil {
			return Batch{}, err
		}
		bs = append(bs, b)
	}
	if len(bs) == 0 {
		return Batch{}, errors.New("no files to import")
	}
	return Merge(source, bs...), nil
}

// ReadBounded reads all of f, refusing a file larger than limit bytes
// before reading any of it (an export is read whole to be parsed, so a
// wrong path to a huge file must not fill the router's memory).
func ReadBounded(f *os.File, limit int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("larger than %d MiB", limit>>20)
	}
	buf := make([]byte, fi.Size())
	_, err = f.ReadAt(buf, 0)
	if err != nil && fi.Size() > 0 {
		return nil, err
	}
	return buf, nil
}
