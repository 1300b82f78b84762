package config

// Decoding of the configuration file's people section: retention of
// leavers, the leavers engine's settings and scheduled MIS imports.

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultPeopleRetention is how long people who left are kept.
const DefaultPeopleRetention = 365 * 24 * time.Hour

// People configures package people. Every key is optional.
type People struct {
	// Retention is how long people who left are kept (records holds
	// excepted).
	Retention time.Duration
	// MaxLeavers is the most leavers a scheduled import applies by itself;
	// 0: 5% of the people it covers, at least 5.
	MaxLeavers int
	// NoticeDays is how far ahead the leavers preview looks (default 14).
	NoticeDays int
	// Grace delays the end of access after the leaving day per group name.
	Grace map[string]time.Duration
	// LeaversPreviewTo are the network manager's addresses for the T-14
	// leavers preview, which also goes to alerts.dsl. Empty: the addresses
	// of the enabled admin accounts with the network role (their member of
	// staff's email, or the account's name when it is an address).
	LeaversPreviewTo []string
	// Imports run daily at their time.
	Imports []PeopleImport
}

// PeopleImport is one scheduled import from the MIS: CSV files (read
// together), a OneRoster bundle directory, or an LDAP directory.
type PeopleImport struct {
	Name      string
	At        time.Duration // time of day, in site.timezone
	Files     []string
	OneRoster string
	LDAP      *PeopleLDAP
}

// PeopleLDAP is a directory to import people from.
type PeopleLDAP struct {
	URL          string
	BaseDN       string
	Filter       string
	BindDN       string
	PasswordFile string
	// StartTLS upgrades an ldap:// connection before the bind (ldaps://
	// is TLS from the start).
	StartTLS bool
	// CAFile is the PEM file of the CA that signed the directory's
	// certificate; "" trusts the system's roots.
	CAFile string
	// Attributes say which attribute holds what, by the names of
	// LDAPAttributeKeys; the keys not given keep package people's
	// defaults (inetOrgPerson as ../shared/mis/README.md describes:
	// employeeNumber holds the UPN or staff code, employeeType the kind,
	// departmentNumber the year, ou the registration group, title the
	// role, uid the username, mail, givenName, sn).
	Attributes map[string]string
	// PupilValues and StaffValues are the kind attribute's values for
	// pupils and staff (default pupil/student and staff/teacher).
	PupilValues, StaffValues []string
}

// LDAPAttributeKeys are the keys people.imports[].ldap.attributes takes.
var LDAPAttributeKeys = []string{"kind", "upn", "admission_number", "staff_code", "title", "forename", "surname",
	"preferred_forename", "year_group", "reg_group", "role", "username", "email"}

func (d *decoder) people(c *Config, path string, v *yaml.Node) {
	dir := filepath.Dir(d.file)
	d.mapping(v, path, map[string]fieldFunc{
		"retention": func(p string, v *yaml.Node) { d.retention(p, v, &c.People.Retention) },
		"max_leavers": func(p string, v *yaml.Node) {
			if n, ok := d.integer(p, v); ok {
				if n < 1 {
					d.at(p, "must be at least 1")
					return
				}
				c.People.MaxLeavers = n
			}
		},
		"notice_days": func(p string, v *yaml.Node) {
			if n, ok := d.integer(p, v); ok {
				if n < 1 || n > 90 {
					d.at(p, "must be 1..90 days")
					return
				}
				c.People.NoticeDays = n
			}
		},
		"leavers_preview_to": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, s string) {
				if err := checkEmail(s); err != nil {
					d.at(ip, "%v", err)
					return
				}
				c.People.LeaversPreviewTo = append(c.People.LeaversPreviewTo, s)
			})
		},
		"grace": func(p string, v *yaml.Node) {
			d.list(p, v, func(_ int, ip string, item *yaml.Node) {
				var group string
				var period time.Duration
				d.mapping(item, ip, map[string]fieldFunc{
					"group":  func(p string, v *yaml.Node) { group, _ = d.str(p, v) },
					"period": func(p string, v *yaml.Node) { d.retention(p, v, &period) },
				})
				if group == "" || period <= 0 {
					d.at(ip, "needs a group and a period (like 7d)")
					return
				}
				if c.People.Grace == nil {
					c.People.Grace = map[string]time.Duration{}
				}
				c.People.Grace[group] = period
			})
		},
		"imports": func(p string, v *yaml.Node) {
			names := map[string]bool{}
			d.list(p, v, func(_ int, ip string, item *yaml.Node) {
				var im PeopleImport
				d.mapping(item, ip, map[string]fieldFunc{
					"name": func(p string, v *yaml.Node) { im.Name, _ = d.str(p, v) },
					"at": func(p string, v *yaml.Node) {
						s, ok := d.str(p, v)
						if !ok {
							return
						}
						t, err := time.Parse("15:04", s)
						if err != nil {
							d.at(p, "%q is not a time of day like 02:30", s)
							return
						}
						im.At = time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
					},
					"files": func(p string, v *yaml.Node) {
						d.strList(p, v, func(_ string, s string) { im.Files = append(im.Files, relTo(dir, s)) })
					},
					"oneroster": func(p string, v *yaml.Node) {
						if s, ok := d.str(p, v); ok && s != "" {
							im.OneRoster = relTo(dir, s)
						}
					},
					"ldap": func(p string, v *yaml.Node) {
						l := &PeopleLDAP{}
						d.mapping(v, p, map[string]fieldFunc{
							"url": func(p string, v *yaml.Node) {
								s, _ := d.str(p, v)
								if u, err := url.Parse(s); err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
									d.at(p, "%q is not ldap://host[:port] or ldaps://host[:port]", s)
									return
								}
								l.URL = s
							},
							"base_dn": func(p string, v *yaml.Node) { l.BaseDN, _ = d.str(p, v) },
							"filter":  func(p string, v *yaml.Node) { l.Filter, _ = d.str(p, v) },
							"bind_dn": func(p string, v *yaml.Node) { l.BindDN, _ = d.str(p, v) },
							"password_file": func(p string, v *yaml.Node) {
								if s, ok := d.str(p, v); ok && s != "" {
									l.PasswordFile = relTo(dir, s)
								}
							},
							"starttls": func(p string, v *yaml.Node) { l.StartTLS = d.boolean(p, v, false) },
							"ca_file": func(p string, v *yaml.Node) {
								if s, ok := d.str(p, v); ok && s != "" {
									l.CAFile = relTo(dir, s)
								}
							},
							"attributes": func(p string, v *yaml.Node) {
								fields := map[string]fieldFunc{}
								for _, k := range LDAPAttributeKeys {
									fields[k] = func(p string, v *yaml.Node) {
										s, ok := d.str(p, v)
										if !ok {
											return
										}
										if !validLDAPAttribute(s) {
											d.at(p, "%q is not an LDAP attribute name", s)
											return
										}
										if l.Attributes == nil {
											l.Attributes = map[string]string{}
										}
										l.Attributes[k] = s
									}
								}
								d.mapping(v, p, fields)
							},
							"pupil_values": func(p string, v *yaml.Node) {
								d.strList(p, v, func(_ string, s string) { l.PupilValues = append(l.PupilValues, s) })
							},
							"staff_values": func(p string, v *yaml.Node) {
								d.strList(p, v, func(_ string, s string) { l.StaffValues = append(l.StaffValues, s) })
							},
						})
						if l.StartTLS && strings.HasPrefix(strings.ToLower(l.URL), "ldaps:") {
							d.at(p, "starttls is for ldap:// URLs; ldaps:// is TLS already")
							return
						}
						if l.URL == "" || l.BaseDN == "" {
							d.at(p, "needs url and base_dn")
							return
						}
						im.LDAP = l
					},
				})
				sources := 0
				if len(im.Files) > 0 {
					sources++
				}
				if im.OneRoster != "" {
					sources++
				}
				if im.LDAP != nil {
					sources++
				}
				switch {
				case im.Name == "":
					d.at(ip, "needs a name")
				case names[im.Name]:
					d.at(ip, "name %q is already used", im.Name)
				case sources != 1:
					d.at(ip, "needs exactly one of files, oneroster or ldap")
				default:
					names[im.Name] = true
					c.People.Imports = append(c.People.Imports, im)
				}
			})
		},
	})
}

// validLDAPAttribute accepts an attribute description's name (RFC 4512
// descr: a letter, then letters, digits and hyphens) or a numeric OID.
func validLDAPAttribute(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	if s[0] >= '0' && s[0] <= '9' {
		for _, r := range s {
			if (r < '0' || r > '9') && r != '.' {
				return false
			}
		}
		return true
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// String names an import for logs.
func (im PeopleImport) String() string {
	return fmt.Sprintf("%s at %02d:%02d", im.Name, int(im.At.Hours()), int(im.At.Minutes())%60)
}
