package main

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
)

// A replayed drill goes through the Slack integration as any drill does:
// its own drill- channel, no announcement, no executive invited at SEV1,
// while the incident it replays had all three.
func TestDrillReplayReachesNoStakeholderOnSlack(t *testing.T) {
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-test")
	t.Setenv("SLACK_SIGNING_SECRET", "slack-signing-secret")
	slack := slacktest.New()
	t.Cleanup(slack.Close)
	announce := slack.AddChannel("incidents", false)
	const exec = "UEXEC0001"
	file, err := config.Parse("hikeshi.yaml", fmt.Appendf(nil, "slack:\n  api_url: %s\n  announce_channels: [%s]\n  executives: [%s]\n  executives_severity: SEV1\n", slack.APIURL(), announce, exec))
	if err != nil {
		t.Fatal(err)
	}
	c := cliT{t: t, ctx: t.Context(), server: "http://" + runHub(t, hub.Config{File: file, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})}
	c.must("INC-1", "declare", "--title", "Checkout DB outage", "--service", "payments", "--severity", "SEV2")
	c.must("SEV1", "severity", "INC-1", "SEV1", "--reason", "all regions")
	c.must("resolved", "status", "INC-1", "resolved")
	c.must("closed", "close", "INC-1", "--resolution", "rolled back")
	c.timeline("INC-1", 4)

	// channel is the incident's channel (its purpose starts with the case
	// number) once it has these members.
	channel := func(caseNumber string, members ...string) slacktest.Channel {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			for _, ch := range slack.Channels() {
				if strings.HasPrefix(ch.Purpose, caseNumber+":") && !slices.ContainsFunc(members, func(m string) bool { return !slices.Contains(ch.Members, m) }) {
					return ch
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no channel of %s with %v: %+v", caseNumber, members, slack.Channels())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	channel("INC-1", exec) // the real incident reached the executives
	c.must("drill INC-2 declared", "drill", "replay", "INC-1", "--speed", "100000")
	// The drill's events reach its channel in order: once the resolution
	// is there, its severity change was handled before it.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(fmt.Sprint(channel("INC-2").Messages), "*resolved*") {
		if time.Now().After(deadline) {
			t.Fatalf("the drill channel never had the resolution: %+v", channel("INC-2").Messages)
		}
		time.Sleep(20 * time.Millisecond)
	}
	drill := channel("INC-2")
	if !strings.HasPrefix(drill.Name, "drill-") {
		t.Errorf("the drill's channel is %s, not a drill- channel", drill.Name)
	}
	if slices.Contains(drill.Members, exec) {
		t.Errorf("the drill invited the executives: %v", drill.Members)
	}
	for _, m := range slack.Channels()[announce].Messages {
		if strings.Contains(m.Text+m.Blocks, "INC-2") {
			t.Errorf("the drill was announced: %s", m.Text)
		}
	}
}
