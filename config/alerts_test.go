package config

import (
	"strings"
	"testing"
	"time"
)

func TestAlertsSection(t *testing.T) {
	c, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(minimal+`alerts:
  smtp: { server: "mail.school.example:587", from: gatehouse@school.example, starttls: always, ca_file: /etc/gatehouse/relay-ca.pem, username: gh, password_file: /etc/gatehouse/smtp.pw }
  dsl: [dsl@school.example, deputy@school.example]
  webhook: https://siem.example/hook
  webhook_secret_file: /etc/gatehouse/webhook.key
  syslog: { server: "siem.example:6514", tls: true }
  digest: daily 16:00
  severity: { ssh: high, tethering: low }
  retention: 400d
  link: https://gatehouse.school.example/
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Alerts
	if a.SMTP.StartTLS != "always" || a.SMTP.CAFile != "/etc/gatehouse/relay-ca.pem" || a.SMTP.Username != "gh" || a.SMTP.PasswordFile != "/etc/gatehouse/smtp.pw" || len(a.DSL) != 2 ||
		a.WebhookSecretFile != "/etc/gatehouse/webhook.key" || a.Syslog.Server != "siem.example:6514" || !a.Syslog.TLS ||
		a.Digest != "daily 16:00" || a.Severity["ssh"] != "high" || a.Severity["tethering"] != "low" || a.Retention != 400*24*time.Hour ||
		a.Link != "https://gatehouse.school.example" {
		t.Errorf("alerts %+v", a)
	}
	for _, bad := range []string{
		"alerts: { digest: fortnightly }",
		"alerts: { severity: { vpn: urgent } }",
		"alerts: { smtp: { starttls: maybe } }",
		"alerts: { syslog: { server: nohost } }",
	} {
		if _, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(minimal+bad+"\n")); err == nil {
			t.Errorf("%q accepted", bad)
		} else if !strings.Contains(err.Error(), "alerts") {
			t.Errorf("%q: error %v does not name the section", bad, err)
		}
	}
}
