package console_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/hub"
)

var tabCount = regexp.MustCompile(`>(Open|All) <span class="count">(\d+)</span>`)

// counts reads the Open and All counts of the list's tabs.
func counts(t *testing.T, body string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range tabCount.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestListCountsNeedToKnow: the counts beside the list's status tabs count
// only the incidents the caller may read, so that neither a confidential
// incident's existence nor, through a search, a word of its title or notes
// shows to those outside it; its declarer and security count it.
func TestListCountsNeedToKnow(t *testing.T) {
	base := startHub(t, hub.Config{Token: adminToken})
	viewer, responder := mint(t, base, "viewer"), mint(t, base, "responder")
	call(t, base, http.MethodPost, "/api/v1/incidents", adminToken, `{"title":"Checkout DB outage","service":"payments","severity":"SEV2"}`, http.StatusCreated)
	call(t, base, http.MethodPost, "/api/v1/incidents", responder, `{"title":"Leaked payroll export","service":"hr","severity":"SEV1","confidential":true}`, http.StatusCreated)
	eventually(t, "both incidents listed", func() bool {
		return counts(t, call(t, base, http.MethodGet, "/incidents", adminToken, "", http.StatusOK))["All"] == "2"
	})
	for _, c := range []struct {
		who, token, path, open, all string
	}{
		{"a viewer", viewer, "/incidents", "1", "1"},
		{"a viewer searching", viewer, "/incidents?q=payroll", "0", "0"},
		{"the declarer searching", responder, "/incidents?q=payroll", "1", "1"},
		{"security searching", adminToken, "/incidents?q=payroll", "1", "1"},
	} {
		body := call(t, base, http.MethodGet, c.path, c.token, "", http.StatusOK)
		if got := counts(t, body); got["Open"] != c.open || got["All"] != c.all {
			t.Errorf("%s (%s) counts %v, want Open %s, All %s", c.who, c.path, got, c.open, c.all)
		}
		if c.token == viewer && strings.Contains(body, "payroll") && !strings.Contains(body, `value="payroll"`) {
			t.Errorf("%s sees the confidential incident:\n%s", c.who, body)
		}
	}
}
