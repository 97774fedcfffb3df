package notify_test

import (
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
)

// TestMailHeadersAndBodiesCarryNoControls: a title with CR/LF adds no
// header and breaks no subject, escapes in a status message reach neither
// the plain-text nor the HTML part; a real SMTP server reads the mail.
func TestMailHeadersAndBodiesCarryNoControls(t *testing.T) {
	e := setup(t, `  recipients:
    oncall: {email: oncall@acme.test}
  rules:
    - name: staff
      on: [declared, status_updated]
      to: [oncall]
`)
	stop := e.h.Run(t, []projection.Projector{e.projector(t).Projector()})
	defer stop()
	st := e.h.Declare(t, incident.Declare{Title: integrationtest.HostileTitle + "\x1b[2J", Service: "storage", Severity: "SEV2"})
	e.h.Do(t, st.ID, incident.UpdateStatus{Status: "identified", Message: integrationtest.HostileNote})
	integrationtest.Eventually(t, "two mails", func() bool { return e.mp.count(t) == 2 })
	for i, m := range e.mp.messages(t) {
		if len(m.To) != 1 || m.To[0].Address != "oncall@acme.test" {
			t.Errorf("mail %d to %+v, want oncall only", i, m.To)
		}
		head, _, _ := strings.Cut(m.Raw, "\r\n\r\n")
		if strings.Contains(strings.ToLower(head), "\nbcc:") {
			t.Errorf("mail %d has a Bcc header:\n%s", i, head)
		}
		integrationtest.CheckClean(t, "subject", m.Subject, false)
		if !strings.Contains(m.Subject, integrationtest.SafeTitle) {
			t.Errorf("mail %d subject %q lacks %q", i, m.Subject, integrationtest.SafeTitle)
		}
		integrationtest.CheckClean(t, "text part", strings.ReplaceAll(m.Text, "\r", ""), true)
		integrationtest.CheckClean(t, "HTML part", strings.ReplaceAll(m.HTML, "\r", ""), true)
	}
}
