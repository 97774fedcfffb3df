package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The signals list is the signals module's: its decisions log, served by
// its GET /api/v1/signals (see ask).

// signalFilters are the query parameters the list passes on.
var signalFilters = []string{"source", "fingerprint", "route", "rule", "flagged"}

// signalRow is one signal and its decision, as the module answers.
type signalRow struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Source      string    `json:"source"`
	Kind        string    `json:"kind"`
	Fingerprint string    `json:"fingerprint"`
	Status      string    `json:"status"`
	Title       string    `json:"title"`
	Severity    string    `json:"severity"`
	Rule        string    `json:"rule"`
	Route       string    `json:"route"`
	Incident    string    `json:"incident"`
	CaseNumber  string    `json:"case_number"`
	Ticket      string    `json:"ticket"`
	Note        string    `json:"note"`
	Flagged     string    `json:"flagged"`
}

type signalsPage struct {
	Filter  map[string]string
	Rows    []signalRow
	Next    string
	Problem string
	// On: the signals module runs in this process.
	On bool
}

func (signalsPage) title() string { return "Signals" }

// signalsAnswer is the signals module's answer.
type signalsAnswer struct {
	Signals []signalRow `json:"signals"`
	Before  uint64      `json:"before"`
	Error   struct {
		Message string `json:"message"`
	} `json:"error"`
	status int
}

// listSignals asks the signals module for the decisions q selects;
// problem says why there are none to show, when it could not answer.
func (c *Console) listSignals(r *http.Request, q url.Values) (a signalsAnswer, problem string) {
	code, body := ask(r, c.d.Signals, "/api/v1/signals", q)
	a.status = code
	if err := json.Unmarshal(body, &a); err != nil && code == http.StatusOK {
		a.status, a.Error.Message = http.StatusBadGateway, "the signals module's answer could not be read"
	}
	if a.status != http.StatusOK || a.Error.Message != "" {
		return a, "The signals could not be listed: " + a.Error.Message
	}
	return a, ""
}

func (c *Console) signals(w http.ResponseWriter, r *http.Request, who Caller) {
	p := signalsPage{Filter: map[string]string{}, On: c.d.Signals != nil}
	q := url.Values{}
	for _, k := range signalFilters {
		if v := r.URL.Query().Get(k); v != "" {
			p.Filter[k] = v
			q.Set(k, v)
		}
	}
	if v := r.URL.Query().Get("before"); v != "" {
		q.Set("before", v)
	}
	if !p.On {
		c.render(w, r, who, http.StatusOK, "signals", p)
		return
	}
	answer, problem := c.listSignals(r, q)
	status := http.StatusOK
	if problem != "" {
		status, p.Problem = answer.status, problem
	}
	p.Rows = answer.Signals
	if answer.Before != 0 {
		q.Set("before", strconv.FormatUint(answer.Before, 10))
		p.Next = "/signals?" + q.Encode()
	}
	c.render(w, r, who, status, "signals", p)
}
