package rulesweb

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// Issue 15: the rules form showed every field for every kind of "what" and
// took a detected class as free text; a group rule was shown as "on" while
// not in force.
func TestRulesFormAndTableSayWhatIsTrue(t *testing.T) {
	s := &site{t: t, st: webtest.OpenStore(t)}
	s.w = webtest.New(t, webtest.Options{Store: s.st, Setup: func(srv *web.Server) error {
		return Register(srv, Options{Store: s.st, Network: testNetwork(),
			OnChange: func(context.Context) error { return nil },
			NotInForce: func(ctx context.Context) (map[int64]string, error) {
				rs, err := s.st.Rules(ctx)
				if err != nil {
					return nil, err
				}
				out := map[int64]string{}
				for _, r := range rs {
					if r.Name == "year 99" {
						out[r.ID] = `group "Year 99" cannot be found`
					}
				}
				return out, nil
			}})
	}})
	s.w.AddUser(t, web.RoleNetwork+"-user", web.RoleNetwork, webtest.Password)
	b := s.login(web.RoleNetwork)
	for _, name := range []string{"year 9", "year 99"} {
		f := gamesRule()
		f["name"] = name
		if name == "year 99" {
			f["who_id"] = "Year 99"
		}
		if st, loc := b.submit("/rules", f); st != 303 {
			t.Fatalf("add %s: %d %s", name, st, loc)
		}
	}
	_, page := b.get("/rules")
	if !strings.Contains(page, `not in force</strong>: group "Year 99" cannot be found`) {
		t.Errorf("the rules table does not say the Year 99 rule is not in force")
	}
	if strings.Count(page, "not in force</strong>") != 1 {
		t.Errorf("the table says more than the one rule is not in force")
	}
	// The form: a field per kind of what, marked for the stylesheet, and
	// the detected classes by name from a list.
	for _, want := range []string{`class="what-fields"`, `class="what-field what-service"`, `class="what-field what-domains"`,
		`class="what-field what-class"`, `<select id="class" name="class">`, `<option value="vpn">VPN use (vpn)</option>`,
		`<option value="doh">Encrypted DNS (DoH) (doh)</option>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the rules form lacks %s", want)
		}
	}
	if strings.Contains(page, `<input id="class"`) {
		t.Errorf("the detected class is still free text")
	}
}
