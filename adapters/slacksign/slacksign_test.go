package slacksign

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// The example from Slack's "Verifying requests from Slack" page.
const (
	docSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	docTimestamp = "1531420618"
	docBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	docSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func TestSlackDocumentationExample(t *testing.T) {
	if got := Sign(docSecret, docTimestamp, []byte(docBody)); got != docSignature {
		t.Fatalf("Sign = %s, want %s", got, docSignature)
	}
	at := time.Unix(1531420618, 0).Add(30 * time.Second)
	if err := Verify(docSecret, docSignature, docTimestamp, []byte(docBody), at); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	at := time.Unix(1531420618, 0)
	body := []byte(docBody)
	cases := []struct {
		name, secret, sig, ts string
		body                  []byte
		now                   time.Time
		want                  error
	}{
		{"wrong secret", "another-secret", docSignature, docTimestamp, body, at, ErrSignature},
		{"body changed", docSecret, docSignature, docTimestamp, append(bytes.Clone(body), '&'), at, ErrSignature},
		{"timestamp changed", docSecret, docSignature, "1531420619", body, at, ErrSignature},
		{"signature truncated", docSecret, docSignature[:40], docTimestamp, body, at, ErrSignature},
		{"v1 scheme", docSecret, "v1=" + docSignature[3:], docTimestamp, body, at, ErrSignature},
		{"uppercase hex", docSecret, "v0=A2114D57B48EAC39B9AD189DD8316235A7B4A8D21A10BD27519666489C69B503", docTimestamp, body, at, ErrSignature},
		{"stale", docSecret, docSignature, docTimestamp, body, at.Add(5*time.Minute + time.Second), ErrStale},
		{"from the future", docSecret, docSignature, docTimestamp, body, at.Add(-5*time.Minute - time.Second), ErrStale},
		{"no signature", docSecret, "", docTimestamp, body, at, ErrMissing},
		{"no timestamp", docSecret, docSignature, "", body, at, ErrMissing},
		{"timestamp not a number", docSecret, docSignature, "soon", body, at, ErrMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := Verify(c.secret, c.sig, c.ts, c.body, c.now); !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}
	// At the edge of the window the request is still accepted.
	if err := Verify(docSecret, docSignature, docTimestamp, body, at.Add(MaxAge)); err != nil {
		t.Fatalf("at the window's edge: %v", err)
	}
}

func TestVerifierBody(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v := &Verifier{Secret: "s3cret", Now: func() time.Time { return now }}
	body := []byte(`{"type":"url_verification","challenge":"abc"}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	r := httptest.NewRequest("POST", "/slack/events", bytes.NewReader(body))
	r.Header.Set(HeaderTimestamp, ts)
	r.Header.Set(HeaderSignature, Sign("s3cret", ts, body))
	got, err := v.Body(r)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Body = %q, %v", got, err)
	}
	big := bytes.Repeat([]byte("a"), MaxBody+1)
	r = httptest.NewRequest("POST", "/slack/events", bytes.NewReader(big))
	r.Header.Set(HeaderTimestamp, ts)
	r.Header.Set(HeaderSignature, Sign("s3cret", ts, big))
	if _, err := v.Body(r); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large body: %v, want ErrTooLarge", err)
	}
}
