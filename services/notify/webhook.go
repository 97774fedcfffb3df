package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// Webhook headers.
const (
	HeaderTimestamp = "X-Hikeshi-Timestamp" // Unix seconds, part of the signed text
	HeaderSignature = "X-Hikeshi-Signature" // sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
	HeaderDelivery  = "X-Hikeshi-Delivery"  // the payload's id, the same on every attempt
)

// Payload is the JSON body of a webhook (documented in the README).
type Payload struct {
	// ID identifies the delivery; a receiver that sees it twice has the
	// same notification twice.
	ID       string          `json:"id"`
	Rule     string          `json:"rule"`
	Trigger  string          `json:"trigger"`
	EventID  string          `json:"event_id"`
	Time     time.Time       `json:"time"`
	Incident PayloadIncident `json:"incident"`
	Change   *PayloadChange  `json:"change,omitempty"`
}

// PayloadIncident is the incident after the event. For a confidential
// incident Title is the codename, Service "(confidential)", and free text
// is withheld.
type PayloadIncident struct {
	ID           string          `json:"id"`
	CaseNumber   string          `json:"case_number"`
	Title        string          `json:"title"`
	Service      string          `json:"service"`
	Severity     events.Severity `json:"severity"`
	Status       events.Status   `json:"status"`
	Summary      string          `json:"summary,omitempty"`
	Commander    string          `json:"commander,omitempty"`
	Confidential bool            `json:"confidential"`
	Drill        bool            `json:"drill"`
	DeclaredAt   time.Time       `json:"declared_at"`
	URL          string          `json:"url"`
}

// PayloadChange is what changed: severity or status from → to, with the
// reason, update message or resolution.
type PayloadChange struct {
	From    string `json:"from,omitempty"`
	To      string `json:"to"`
	Message string `json:"message,omitempty"`
}

func newPayload(id string, r Report) Payload {
	p := Payload{
		ID: id, Rule: r.Rule, Trigger: r.Trigger, EventID: r.EventID, Time: r.Time,
		Incident: PayloadIncident{
			ID: r.IncidentID, CaseNumber: r.CaseNumber, Title: r.Title, Service: r.Service,
			Severity: r.Severity, Status: r.Status, Summary: r.Summary, Commander: r.Commander,
			Confidential: r.Confidential, Drill: r.Drill, DeclaredAt: r.DeclaredAt, URL: r.TimelineURL,
		},
	}
	if r.To != "" {
		p.Change = &PayloadChange{From: r.From, To: r.To, Message: r.Message}
	}
	return p
}

// Sign returns the X-Hikeshi-Signature value of body sent at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery as a receiver should: the signature in constant
// time, and the timestamp within tolerance of now (replays of an old
// delivery fail).
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("bad %s %q", HeaderTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%s is %s away from now", HeaderTimestamp, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature)) {
		return fmt.Errorf("%s does not match", HeaderSignature)
	}
	return nil
}

// post delivers a payload. The transport retries network errors, 5xx and
// 429 (obeying Retry-After); what it finally gets is returned as the HTTP
// status.
func (p *Projector) post(ctx context.Context, url string, secret []byte, pl Payload) (int, error) {
	body, err := json.Marshal(pl)
	if err != nil {
		return 0, err
	}
	ts := strconv.FormatInt(p.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hikeshi-notify/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	req.Header.Set(HeaderDelivery, pl.ID)
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webhook %s: %w", pl.Rule, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// webhookOutcome turns the final status into an outcome, or an error to
// retry later. As for every integration (httpx.Permanent), rate limits,
// server errors and refused credentials (401, 403: a secret being
// rotated) are not final.
func webhookOutcome(name string, status int) (string, error) {
	switch {
	case status >= 200 && status < 300:
		return events.NotifyAccepted, nil
	case status == http.StatusBadRequest, status == http.StatusNotFound, status == http.StatusGone,
		status == http.StatusUnprocessableEntity:
		return events.NotifyRefused, nil
	}
	return "", fmt.Errorf("webhook %s answered %d", name, status)
}
