package github_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/githubtest"
	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/github"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/slackbot"
)

// TestPostmortemLinkReachesSlackAfterArchive runs the Slack and GitHub
// modules together, as the hub does: on close the Slack module archives
// the channel (archive_on_close) while the GitHub module opens the
// postmortem; the link still reaches Slack, in the thread of the
// incident's announcement.
func TestPostmortemLinkReachesSlackAfterArchive(t *testing.T) {
	t.Setenv("HIKESHI_TEST_GITHUB_TOKEN", token)
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-test")
	t.Setenv("SLACK_SIGNING_SECRET", "test-signing-secret")
	gh := githubtest.New(t, token, "acme/postmortems")
	sl := slacktest.New()
	t.Cleanup(sl.Close)
	sl.PutChannel(slacktest.Channel{ID: "CANNOUNCE1", Name: "incidents"})
	h := integrationtest.New(t, fmt.Sprintf(`github:
  base_url: %s
  token_env: HIKESHI_TEST_GITHUB_TOKEN
  repo: acme/postmortems
  write_interval: 1ms
slack:
  api_url: %s
  post_interval: 1ms
  announce_channels: [CANNOUNCE1]
  archive_on_close: true
`, gh.URL, sl.APIURL()))
	ctx := context.Background()
	gp, err := github.New(h.Env)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := slackbot.Load(h.Env.Config)
	if err != nil {
		t.Fatal(err)
	}
	bot, err := slackbot.New(ctx, cfg, slackbot.Deps{JS: h.Bus.JS, Commands: h.Env.Commands, Effects: h.Env.Effects,
		Token: "xoxb-test", SigningSecret: "test-signing-secret", PublicURL: "https://hikeshi.example.test", Logger: h.Env.Logger})
	if err != nil {
		t.Fatal(err)
	}
	h.Run(t, []projection.Projector{bot.Projector(), {Durable: github.Name, Handle: gp.Handle}})

	st := h.Declare(t, incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2"})
	h.Do(t, st.ID, incident.UpdateStatus{Status: "resolved"})
	h.Do(t, st.ID, incident.Close{Resolution: "renewed the certificate"})
	integrationtest.Eventually(t, "the postmortem opened", func() bool { return h.Count(t, st.ID, events.TypeGitHubPostmortemOpened) == 1 })
	integrationtest.Eventually(t, "the link in the announcement's thread", func() bool {
		for _, m := range sl.Channels()["CANNOUNCE1"].Messages {
			for _, r := range m.Replies {
				if strings.Contains(r.Text, "acme/postmortems#1") {
					return true
				}
			}
		}
		return false
	})
	var archived bool
	for _, c := range sl.Channels() {
		archived = archived || c.Archived
	}
	if !archived {
		t.Fatal("the incident channel was not archived")
	}
}
