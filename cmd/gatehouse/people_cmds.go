package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

const peopleUsage = `gatehouse people: import the school's people from the MIS, and list them.

  gatehouse people import --config FILE [--apply] FILE...
      Read CSV exports (SIMS-style, Arbor-style, staff, or a shape with a
      saved column mapping) or OneRoster 1.1 bundle directories, read
      together as one import, and print the preview: joiners, movers,
      changed fields, leavers, and every bad row by file, line and reason.
      Nothing changes without --apply, which applies the preview in one
      audited transaction. People whose leaving day has passed lose access
      at the daemon's next scheduler run (within a minute).

  gatehouse people mapping --config FILE --name NAME --kind pupil|staff
                          [--dates DD/MM/YYYY] CSVFILE FIELD=COLUMN...
      Save a column mapping for an export whose columns no built-in shape
      knows; later imports of a file with the same header row use it.
      FIELDs: upn admission_no staff_code title legal_forename
      legal_surname preferred_forename year_group reg_group role
      starts_on leaves_on username email.

  gatehouse people password --config FILE --person ID
      Set a person's Wi-Fi password (RADIUS PAP/802.1X login: their
      username), read from standard input; an empty line removes it.

  gatehouse people list --config FILE [--json] [--leaving-before DATE]
      Print the people, optionally only those leaving before DATE
      (YYYY-MM-DD).

Examples:
  gatehouse people import --config /etc/gatehouse/gatehouse.yaml pupils.csv staff.csv
  gatehouse people import --config /etc/gatehouse/gatehouse.yaml --apply pupils.csv staff.csv
  gatehouse people list --config /etc/gatehouse/gatehouse.yaml --leaving-before 2027-08-01
`

func cmdPeople(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand (import or list)")
	}
	switch args[0] {
	case "-h", "--help":
		return flag.ErrHelp
	case "import":
		return cmdPeopleImport(ctx, env, args[1:])
	case "list":
		return cmdPeopleList(ctx, env, args[1:])
	case "mapping":
		return cmdPeopleMapping(ctx, env, args[1:])
	case "password":
		return cmdPeoplePassword(ctx, env, args[1:])
	}
	return usagef("unknown subcommand %q (want import, mapping, password or list)", args[0])
}

func cmdPeopleImport(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("people import", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	apply := fs.Bool("apply", false, "apply the preview")
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	if err := requireConfig(*path); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("name at least one file to import")
	}
	cfg, st, err := openDatabase(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	w, err := newPeople(slog.New(slog.DiscardHandler), cfg, policy.Network{}, st, nil, nil)
	if err != nil {
		return err
	}
	saved, err := w.svc.SavedShapes(ctx)
	if err != nil {
		return err
	}
	b, err := people.ReadFiles("cli", fs.Args(), saved)
	if err != nil {
		return err
	}
	pv, err := w.svc.Preview(ctx, cliActor(), b)
	if err != nil {
		return err
	}
	printPreview(env.stdout, pv, cfg.Site.Location)
	if !*apply {
		fmt.Fprintf(env.stdout, "\nNothing was changed. To apply this preview: the same command with --apply, or confirm import %d on the admin page.\n", pv.ID)
		return nil
	}
	if _, err := w.svc.Apply(ctx, cliActor(), pv.ID); err != nil {
		return fmt.Errorf("applying import %d: %w", pv.ID, err)
	}
	fmt.Fprintf(env.stdout, "\nApplied import %d.\n", pv.ID)
	return nil
}

func printPreview(out io.Writer, pv people.Preview, loc *time.Location) {
	fmt.Fprintf(out, "Import %d from %s: %s\n", pv.ID, pv.Source, pv.Summary())
	section := func(title string, es []people.Entry) {
		if len(es) == 0 {
			return
		}
		fmt.Fprintf(out, "\n%s (%d):\n", title, len(es))
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		for _, e := range es {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s", people.Key(e.Person), people.DisplayName(e.Person), groupOf(e.Person), e.Person.LeavesOn)
			for _, f := range e.Fields {
				fmt.Fprintf(tw, "\t%s: %q -> %q", f.Field, f.Old, f.New)
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	section("Joiners", pv.Joiners)
	section("Movers", pv.Movers)
	section("Changed", pv.Changed)
	section("Leavers (no longer in the MIS; access ends at the end of today)", pv.Leavers)
	if len(pv.Problems) > 0 {
		fmt.Fprintf(out, "\nBad rows, not imported (%d):\n", len(pv.Problems))
		for _, p := range pv.Problems {
			fmt.Fprintf(out, "  %s\n", p)
		}
	}
	if len(pv.Leavers) >= pv.Threshold {
		fmt.Fprintf(out, "\nWarning: %d leavers is at or above the safety threshold of %d; a scheduled import would wait for a person.\n", len(pv.Leavers), pv.Threshold)
	}
}

func groupOf(p store.Person) string {
	if p.Kind == "staff" {
		return "staff " + p.Role
	}
	return p.YearGroup + " " + p.RegGroup
}

// personJSON is one person as `people list --json` prints them.
type personJSON struct {
	ID          int64  `json:"id"`
	Kind        string `json:"kind"`
	Key         string `json:"key"`
	UPN         string `json:"upn,omitempty"`
	AdmissionNo string `json:"admission_no,omitempty"`
	StaffCode   string `json:"staff_code,omitempty"`
	Name        string `json:"name"`
	LegalName   string `json:"legal_name"`
	YearGroup   string `json:"year_group,omitempty"`
	RegGroup    string `json:"reg_group,omitempty"`
	Role        string `json:"role,omitempty"`
	Username    string `json:"username,omitempty"`
	Email       string `json:"email,omitempty"`
	State       string `json:"state"`
	StartsOn    string `json:"starts_on,omitempty"`
	LeavesOn    string `json:"leaves_on,omitempty"`
	PostponedTo string `json:"postponed_to,omitempty"`
	RecordsHold bool   `json:"records_hold,omitempty"`
}

func cmdPeopleList(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("people list", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	asJSON := fs.Bool("json", false, "print JSON")
	before := fs.String("leaving-before", "", "only people leaving before this day (YYYY-MM-DD)")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if err := requireConfig(*path); err != nil {
		return err
	}
	if *before != "" {
		if _, err := time.Parse("2006-01-02", *before); err != nil {
			return usagef("--leaving-before %q: want YYYY-MM-DD", *before)
		}
	}
	_, st, err := openDatabase(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	ps, err := st.ListPeople(ctx, store.PeopleFilter{LeavingBefore: *before})
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]personJSON, 0, len(ps))
		for _, p := range ps {
			out = append(out, personJSON{ID: p.ID, Kind: p.Kind, Key: people.Key(p), UPN: p.UPN, AdmissionNo: p.AdmissionNo,
				StaffCode: p.StaffCode, Name: people.DisplayName(p), LegalName: p.LegalForename + " " + p.LegalSurname,
				YearGroup: p.YearGroup, RegGroup: p.RegGroup, Role: p.Role, Username: p.Username, Email: p.Email, State: p.State,
				StartsOn: p.StartsOn, LeavesOn: p.LeavesOn, PostponedTo: p.PostponedTo, RecordsHold: p.RecordsHold})
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(env.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tNAME\tKIND\tGROUP\tSTATE\tLEAVES")
	for _, p := range ps {
		leaves := p.LeavesOn
		if p.PostponedTo != "" {
			leaves = p.PostponedTo + " (postponed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", people.Key(p), people.DisplayName(p), p.Kind, groupOf(p), p.State, leaves)
	}
	return tw.Flush()
}

func cmdPeopleMapping(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("people mapping", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	name := fs.String("name", "", "the mapping's name")
	kind := fs.String("kind", "", "pupil or staff")
	dates := fs.String("dates", "", "how dates are written: DD/MM/YYYY or YYYY-MM-DD")
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	if err := requireConfig(*path); err != nil {
		return err
	}
	if *name == "" || fs.NArg() < 2 {
		return usagef("need --name, a CSV file and at least one FIELD=COLUMN")
	}
	sh := people.Shape{Name: *name, Kind: *kind, Columns: map[people.Field]string{}}
	switch *dates {
	case "":
	case "DD/MM/YYYY":
		sh.Dates = []string{"02/01/2006"}
	case "YYYY-MM-DD":
		sh.Dates = []string{"2006-01-02"}
	default:
		return usagef("--dates %q: want DD/MM/YYYY or YYYY-MM-DD", *dates)
	}
	for _, a := range fs.Args()[1:] {
		f, col, ok := strings.Cut(a, "=")
		if !ok {
			return usagef("%q is not FIELD=COLUMN", a)
		}
		sh.Columns[people.Field(f)] = col
	}
	if err := sh.Check(); err != nil {
		return usagef("%v", err)
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	header, err := people.ReadHeader(data)
	if err != nil {
		return err
	}
	cfg, st, err := openDatabase(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	w, err := newPeople(slog.New(slog.DiscardHandler), cfg, policy.Network{}, st, nil, nil)
	if err != nil {
		return err
	}
	if err := w.svc.SaveShape(ctx, cliActor(), header, sh); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "saved mapping %q for files whose header is: %s\n", *name, strings.Join(header, ","))
	return nil
}

func cmdPeoplePassword(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("people password", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	who := fs.String("person", "", "UPN, staff code, admission number, username or email")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if err := requireConfig(*path); err != nil {
		return err
	}
	if *who == "" {
		return usagef("missing --person ID")
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	pw, err := bufio.NewReader(env.stdin).ReadString('\n')
	if err != nil && pw == "" {
		return fmt.Errorf("reading the password from standard input: nothing was given")
	}
	pw = strings.TrimRight(pw, "\r\n")
	st, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	w, err := newPeople(slog.New(slog.DiscardHandler), cfg, policy.Network{}, st, nil, nil)
	if err != nil {
		return err
	}
	p, err := w.svc.Person(ctx, *who)
	if err != nil {
		return err
	}
	if err := w.svc.SetWiFiPassword(ctx, cliActor(), p.ID, pw); err != nil {
		return err
	}
	if pw == "" {
		fmt.Fprintf(env.stdout, "removed the Wi-Fi password of %s\n", people.DisplayName(p))
	} else {
		fmt.Fprintf(env.stdout, "set the Wi-Fi password of %s (login: %s)\n", people.DisplayName(p), p.Username)
	}
	return nil
}
