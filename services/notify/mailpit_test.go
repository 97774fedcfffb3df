package notify_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// mailpitBin is a real SMTP server with an HTTP API, built once per test
// run from the version pinned in tools/go.mod.
var mailpitBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "notify-mailpit-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	_, file, _, _ := runtime.Caller(0)
	tools := filepath.Join(filepath.Dir(file), "..", "..", "tools")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	mailpitBin = filepath.Join(dir, "mailpit")
	build := exec.Command(goBin, "build", "-o", mailpitBin, "github.com/axllent/mailpit")
	build.Dir = tools
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building mailpit in %s: %v\n%s", tools, err, out)
		return 1
	}
	return m.Run()
}

// mailpit is one running server.
type mailpit struct {
	host string
	smtp int
	api  string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startMailpit starts a server with its own database; extra are more flags.
func startMailpit(t *testing.T, extra ...string) *mailpit {
	t.Helper()
	dir := t.TempDir()
	smtpPort, httpPort := freePort(t), freePort(t)
	args := append([]string{"--disable-version-check",
		"--smtp", "127.0.0.1:" + strconv.Itoa(smtpPort),
		"--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--database", filepath.Join(dir, "mailpit.db"),
	}, extra...)
	cmd := exec.Command(mailpitBin, args...)
	logf, err := os.Create(filepath.Join(dir, "mailpit.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	mp := &mailpit{host: "127.0.0.1", smtp: smtpPort, api: "http://127.0.0.1:" + strconv.Itoa(httpPort)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(mp.api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if c, err := net.Dial("tcp", net.JoinHostPort(mp.host, strconv.Itoa(smtpPort))); err == nil {
					c.Close()
					return mp
				}
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("mailpit exited:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("mailpit did not start:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type mpAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// mpMessage is a message as GET /api/v1/message/{ID} returns it.
type mpMessage struct {
	ID        string      `json:"ID"`
	MessageID string      `json:"MessageID"`
	From      mpAddress   `json:"From"`
	To        []mpAddress `json:"To"`
	Subject   string      `json:"Subject"`
	Text      string      `json:"Text"`
	HTML      string      `json:"HTML"`
	Raw       string      `json:"-"`
}

func (mp *mailpit) get(t testing.TB, path string, v any) []byte {
	t.Helper()
	resp, err := http.Get(mp.api + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return b
}

// messages reads every message back, in the order received, with its
// parts and its raw source.
func (mp *mailpit) messages(t testing.TB) []mpMessage {
	t.Helper()
	var list struct {
		Total    int `json:"total"`
		Messages []struct {
			ID string `json:"ID"`
		} `json:"messages"`
	}
	mp.get(t, "/api/v1/messages?limit=1000", &list)
	if list.Total != len(list.Messages) {
		t.Fatalf("mailpit holds %d messages, listed %d", list.Total, len(list.Messages))
	}
	out := make([]mpMessage, 0, len(list.Messages))
	for i := len(list.Messages) - 1; i >= 0; i-- { // newest first in the list
		var m mpMessage
		mp.get(t, "/api/v1/message/"+list.Messages[i].ID, &m)
		m.Raw = string(mp.get(t, "/api/v1/message/"+list.Messages[i].ID+"/raw", nil))
		out = append(out, m)
	}
	return out
}

func (mp *mailpit) count(t testing.TB) int {
	t.Helper()
	var list struct {
		Total int `json:"total"`
	}
	mp.get(t, "/api/v1/messages?limit=1", &list)
	return list.Total
}
