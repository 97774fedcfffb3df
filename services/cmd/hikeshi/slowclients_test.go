package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/slacksign"
	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/hub"
)

const (
	webhookToken  = "signals-token"
	slackSecret   = "slack-signing-secret"
	awsSecret     = "aws-shared-secret"
	webhookConfig = `signals:
  token_env: SIG_TOKEN
  aws:
    secret_env: SIG_AWS_SECRET
slack:
  api_url: %s
`
)

// startWebhookHub runs a hub with the signal and Slack webhooks mounted,
// as a user deploys it, with the given HTTP timeouts.
func startWebhookHub(t *testing.T, timeouts httpapi.Timeouts) string {
	t.Helper()
	t.Setenv("SIG_TOKEN", webhookToken)
	t.Setenv("SIG_AWS_SECRET", awsSecret)
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-test")
	t.Setenv("SLACK_SIGNING_SECRET", slackSecret)
	slack := slacktest.New()
	t.Cleanup(slack.Close)
	file, err := config.Parse("hikeshi.yaml", fmt.Appendf(nil, webhookConfig, slack.APIURL()))
	if err != nil {
		t.Fatal(err)
	}
	return runHub(t, hub.Config{File: file, HTTPTimeouts: timeouts, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// slowRequests are the starts of requests whose rest trickles in: a body
// on every kind of route (the API, signal ingest, the Slack webhooks that
// read the body before checking its signature), and headers.
var slowRequests = []string{
	"POST /api/v1/incidents HTTP/1.1\r\nHost: hikeshi\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n",
	"POST /api/v1/signals/alertmanager HTTP/1.1\r\nHost: hikeshi\r\nAuthorization: Bearer " + webhookToken + "\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n",
	"POST /api/v1/signals HTTP/1.1\r\nHost: hikeshi\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n",
	"POST /api/v1/signals/aws HTTP/1.1\r\nHost: hikeshi\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n",
	"POST /slack/events HTTP/1.1\r\nHost: hikeshi\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n",
	"POST /slack/interactivity HTTP/1.1\r\nHost: hikeshi\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4096\r\n\r\n",
	"POST /slack/commands HTTP/1.1\r\nHost: hikeshi\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4096\r\n\r\n",
	"POST /api/v1/signals HTTP/1.1\r\nHost: hikeshi\r\nX-Trickled",
}

// 500 clients trickling their requests a byte at a time are all cut off
// by the server, on every route, while a normal client is served.
func TestSlowClientsAreCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: 500 trickling clients against a whole hub; runs in make test")
	}
	addr := startWebhookHub(t, httpapi.Timeouts{Read: time.Second, Write: 5 * time.Second, Idle: time.Second})
	const clients = 500
	stop := make(chan struct{})
	defer close(stop)
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[string]int{} // route → connections the server has not closed
	for i := range clients {
		start := slowRequests[i%len(slowRequests)]
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, start); err != nil {
			t.Fatal(err)
		}
		route := strings.SplitN(start, " HTTP", 2)[0]
		mu.Lock()
		open[route]++
		mu.Unlock()
		wg.Add(2)
		go func() { // a byte every 100ms until the server hangs up
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := conn.Write([]byte("a")); err != nil {
						return
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			if closedByServer(conn, 30*time.Second) {
				mu.Lock()
				open[route]--
				mu.Unlock()
			}
		}()
	}

	// Meanwhile a normal client is served on each kind of route.
	hc := &http.Client{Timeout: 10 * time.Second}
	body, err := os.ReadFile("../../signals/ingest/testdata/alertmanager-v4.json")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/signals/alertmanager", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+webhookToken)
	req.Header.Set("Content-Type", "application/json")
	mustStatus(t, hc, req, http.StatusAccepted)
	req, _ = http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/incidents", strings.NewReader(
		`{"title":"Checkout latency","service":"payments","severity":"SEV3"}`))
	req.Header.Set("Content-Type", "application/json")
	mustStatus(t, hc, req, http.StatusCreated)
	mustStatus(t, hc, slackRequest(t, addr, `{"type":"url_verification","challenge":"c-1"}`), http.StatusOK)

	waitClosed := make(chan struct{})
	go func() { wg.Wait(); close(waitClosed) }()
	deadline := time.After(30 * time.Second)
	for {
		mu.Lock()
		left := 0
		for _, n := range open {
			left += n
		}
		mu.Unlock()
		if left == 0 {
			return
		}
		select {
		case <-deadline:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%d of %d slow connections still open after 30s: %v", left, clients, open)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// closedByServer reads what the server answers until it closes conn; it
// reports false when conn is still open after d.
func closedByServer(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func slackRequest(t *testing.T, addr, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/slack/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(slacksign.HeaderTimestamp, ts)
	req.Header.Set(slacksign.HeaderSignature, slacksign.Sign(slackSecret, ts, []byte(body)))
	return req
}

func mustStatus(t *testing.T, hc *http.Client, req *http.Request, want int) *http.Response {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	b, _ := io.ReadAll(bufio.NewReader(resp.Body))
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, b)
	}
	return resp
}

// Signal ingest answers, accepted or refused, are not sniffed either, and
// a signal endpoint asked with GET lists POST.
func TestSignalAnswersAreNotSniffed(t *testing.T) {
	addr := startWebhookHub(t, httpapi.Timeouts{})
	hc := &http.Client{Timeout: 10 * time.Second}
	post := func(path, token, body string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	alert := `{"source":"datadog","fingerprint":"dd-1","title":"Disk full","severity":"high","status":"firing","starts_at":"2025-06-01T00:00:00Z"}`
	get, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/signals/alertmanager", nil)
	for _, c := range []struct {
		req    *http.Request
		status int
	}{
		{post("/api/v1/signals", webhookToken, alert), http.StatusAccepted},
		{post("/api/v1/signals", webhookToken, "{"), http.StatusBadRequest},
		{post("/api/v1/signals", "wrong", alert), http.StatusUnauthorized},
		{post("/api/v1/signals/aws", "", "{}"), http.StatusUnauthorized},
		{get, http.StatusMethodNotAllowed},
	} {
		resp := mustStatus(t, hc, c.req, c.status)
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s (%d): X-Content-Type-Options %q", c.req.Method, c.req.URL.Path, c.status, got)
		}
		if c.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET %s: Allow %q, want POST", c.req.URL.Path, resp.Header.Get("Allow"))
		}
	}
}
