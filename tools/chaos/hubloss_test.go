//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/jiratest"
	"github.com/hikeshi/hikeshi/adapters/slacktest"
)

// sideEffectProxy stands between one hub and a fake: each call takes
// delay (so that a kill finds work in flight), and the first call that
// creates something (a Slack channel, a JIRA issue) runs onCreate once
// the fake has acted, before the answer goes back: the hub dies between
// the effect and its record.
func sideEffectProxy(t *testing.T, target string, delay time.Duration, onCreate func(what string)) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // the answers to the killed hub fail, as meant
	rp.ModifyResponse = func(resp *http.Response) error {
		p := resp.Request.URL.Path
		if strings.HasSuffix(p, "/conversations.create") || (resp.Request.Method == http.MethodPost && strings.HasSuffix(p, "/rest/api/2/issue")) {
			killed := false
			once.Do(func() { onCreate(p); killed = true })
			if killed {
				return errors.New("the hub is gone")
			}
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestHubLossMidSideEffects SIGKILLs one of two hubs right after Slack
// created a channel for it (or JIRA a case), before the hub heard back.
// The other hub finishes the work: every incident gets exactly one
// channel, one case and one announcement.
func TestHubLossMidSideEffects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	slack := slacktest.New()
	t.Cleanup(slack.Close)
	slack.PutChannel(slacktest.Channel{ID: "CANNOUNCE1", Name: "incidents"})
	jira := jiratest.New(t, "Bearer jira-token")
	c := newCluster(t, nil, nil)
	t.Cleanup(c.dump)
	env := []string{"SLACK_BOT_TOKEN=xoxb-chaos", "SLACK_SIGNING_SECRET=chaos-secret", "HIKESHI_TEST_JIRA_TOKEN=jira-token"}

	killedAt := make(chan time.Time, 1)
	var a *hub
	config := func(name string, onCreate func(string)) string {
		path := filepath.Join(c.dir, name+".yaml")
		text := fmt.Sprintf(`slack:
  api_url: %s/api/
  workspace_url: https://chaos.slack.com
  post_interval: 1ms
  announce_channels: [CANNOUNCE1]
jira:
  base_url: %s
  token_env: HIKESHI_TEST_JIRA_TOKEN
  project: OPS
`, sideEffectProxy(t, slack.URL, 50*time.Millisecond, onCreate), sideEffectProxy(t, jira.URL, 50*time.Millisecond, onCreate))
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	aConfig := config("a", func(what string) {
		t.Logf("SIGKILL hub a: %s done, its answer not delivered", what)
		a.kill()
		killedAt <- time.Now()
	})
	bConfig := config("b", func(string) {})
	a = c.startHub("a", env, "--config", aConfig)
	b := c.startHub("b", env, "--config", bConfig)

	var titles []string
	for i := range 10 {
		title := fmt.Sprintf("chaos effect %c", 'a'+i)
		titles = append(titles, title)
		declare(t, ctx, b, title)
	}
	var lost time.Time
	select {
	case lost = <-killedAt:
	case <-time.After(60 * time.Second):
		t.Fatal("hub a made no Slack channel or JIRA case within 60 s")
	}

	// Done: each title has its channel, case and announcement.
	counts := func() (channels, cases, announced map[string]int) {
		channels, cases, announced = map[string]int{}, map[string]int{}, map[string]int{}
		for _, ch := range slack.Channels() {
			for _, title := range titles {
				if strings.HasSuffix(ch.Name, strings.ReplaceAll(title, " ", "-")) {
					channels[title]++
				}
			}
		}
		issues, _ := jira.Snapshot()
		for _, is := range issues {
			for _, title := range titles {
				if strings.Contains(is.Summary, title) {
					cases[title]++
				}
			}
		}
		for _, m := range slack.Channels()["CANNOUNCE1"].Messages {
			for _, title := range titles {
				if strings.Contains(m.Text+m.Blocks, title) {
					announced[title]++
				}
			}
		}
		return channels, cases, announced
	}
	done := func() bool {
		channels, cases, announced := counts()
		for _, title := range titles {
			if channels[title] == 0 || cases[title] == 0 || announced[title] == 0 {
				return false
			}
		}
		return true
	}
	for !done() {
		if time.Since(lost) > 90*time.Second {
			channels, cases, announced := counts()
			t.Fatalf("90 s after hub a's loss, hub b has not finished: channels %v, cases %v, announcements %v", channels, cases, announced)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("hub b finished the side effects %.1f s after hub a's loss", time.Since(lost).Seconds())
	// Anything repeated would show by now; wait a little for a late one.
	time.Sleep(3 * time.Second)
	channels, cases, announced := counts()
	for _, title := range titles {
		if channels[title] != 1 || cases[title] != 1 || announced[title] != 1 {
			t.Errorf("%q: %d channels, %d cases, %d announcements; want one each", title, channels[title], cases[title], announced[title])
		}
	}
	if b.running() == false {
		t.Error("hub b stopped")
	}
}
