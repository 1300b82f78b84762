package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// HostProblems lists what the file names that this machine lacks: a database
// directory that cannot be created or written, certificate or RADIUS secret
// files that are missing or unreadable, and interfaces (uplink, segments,
// inspect) that do not exist. It only looks; it creates nothing. `run`
// refuses to start on any of them; `check-config` prints them as warnings,
// since the file may be checked on another machine than the router.
func (c *Config) HostProblems() []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, c.Problemf(field, format, args...))
	}

	if c.Database != "" {
		if err := checkDatabase(c.Database); err != nil {
			add("database", "%v", err)
		}
	}
	if c.Portal.Host != "" {
		for _, f := range []struct{ field, path string }{{"portal.cert_file", c.Portal.CertFile}, {"portal.key_file", c.Portal.KeyFile}} {
			if err := checkReadable(f.path); err != nil {
				add(f.field, "%v", err)
			}
		}
	}
	switch c.Admin.TLS {
	case "files":
		for _, f := range []struct{ field, path string }{{"admin.cert_file", c.Admin.CertFile}, {"admin.key_file", c.Admin.KeyFile}} {
			if err := checkReadable(f.path); err != nil {
				add(f.field, "%v", err)
			}
		}
	case "auto":
		// The pair is made on first start; its directory must take it.
		// The database's directory is checked above already.
		dbDir := filepath.Dir(c.Database)
		seen := map[string]bool{dbDir: true}
		for _, f := range []struct{ field, path string }{{"admin.cert_file", c.Admin.CertFile}, {"admin.key_file", c.Admin.KeyFile}} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(f.path); err == nil {
				if err := checkReadable(f.path); err != nil {
					add(f.field, "%v", err)
				}
				continue
			}
			if dir := filepath.Dir(f.path); !seen[dir] {
				seen[dir] = true
				if err := checkDirUsable(dir); err != nil {
					add(f.field, "%v", err)
				}
			}
		}
	}
	for i, rc := range c.RADIUS.Clients {
		if err := checkSecret(rc.SecretFile); err != nil {
			add(fmt.Sprintf("radius.clients[%d].secret_file", i), "%v", err)
		}
	}

	checkIface := func(field, name string) {
		if name == "" {
			return
		}
		if _, err := net.InterfaceByName(name); err != nil {
			add(field, "interface %q does not exist on this machine", name)
		}
	}
	checkIface("uplink.interface", c.Uplink.Interface)
	for i, s := range c.Segments {
		checkIface(fmt.Sprintf("segments[%d].interface", i), s.Interface)
	}
	for i, name := range c.Inspect.Interfaces {
		checkIface(fmt.Sprintf("inspect.interfaces[%d]", i), name)
	}
	for i, name := range c.DHCPRelay.Interfaces {
		checkIface(fmt.Sprintf("dhcp.relay_interfaces[%d]", i), name)
	}
	sortProblems(ps)
	return ps
}

// checkDatabase checks that the database file can be opened for writing, and
// that its directory takes new files: SQLite in WAL mode creates -wal and
// -shm files beside the database.
func checkDatabase(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("%s is a directory, not a database file", path)
	case err == nil:
		if err := syscall.Access(path, accessR|accessW); err != nil {
			return fmt.Errorf("%s cannot be read and written: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist) && !isNotDir(err):
		return fmt.Errorf("%s: %w", path, err)
	}
	return checkDirUsable(filepath.Dir(path))
}

// access(2) mode bits; syscall has no names for them.
const (
	accessX = 0x1
	accessW = 0x2
	accessR = 0x4
)

// checkDirUsable reports whether files can be created in dir, or, if dir does
// not exist, whether it could be created (its nearest existing ancestor is a
// writable directory). access(2) is used rather than trying, so that checking
// a configuration never leaves anything behind.
func checkDirUsable(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if parent := filepath.Dir(p); parent != p {
				continue
			}
			return fmt.Errorf("directory %s cannot be created: no part of the path exists", dir)
		}
		if err != nil && !isNotDir(err) {
			return fmt.Errorf("directory %s: %w", dir, err)
		}
		if err != nil || !fi.IsDir() {
			return fmt.Errorf("directory %s cannot be created: %s is not a directory", dir, firstNonDir(dir))
		}
		if err := syscall.Access(p, accessW|accessX); err != nil {
			if p == dir {
				return fmt.Errorf("directory %s is not writable: %w", dir, err)
			}
			return fmt.Errorf("directory %s cannot be created: %s is not writable: %w", dir, p, err)
		}
		return nil
	}
}

func isNotDir(err error) bool {
	return errors.Is(err, syscall.ENOTDIR)
}

// firstNonDir finds the component of path that exists but is not a
// directory, for a message that points at the real culprit.
func firstNonDir(path string) string {
	parts := strings.Split(filepath.Clean(path), string(filepath.Separator))
	cur := ""
	if filepath.IsAbs(path) {
		cur = string(filepath.Separator)
	}
	for _, part := range parts {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		fi, err := os.Stat(cur)
		if err != nil {
			return cur
		}
		if !fi.IsDir() {
			return cur
		}
	}
	return path
}

func checkReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not a file", path)
	}
	return nil
}

// checkSecret reads a RADIUS shared secret file, which must hold a secret:
// an empty secret would let anyone on the network forge requests.
func checkSecret(path string) error {
	if err := checkReadable(path); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, unwrapPath(err))
	}
	if strings.TrimSpace(string(data)) == "" {
		return fmt.Errorf("%s is empty; it must hold the shared secret", path)
	}
	return nil
}

// unwrapPath drops the *PathError wrapper, whose path the message already
// names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
