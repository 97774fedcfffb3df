package slackbot

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/slack-go/slack"
)

// A Slack user acting through the slash command, a modal, a button or a
// reaction is recorded as that user: their Slack id, or, with
// map_users_by_email, the person of their e-mail address (the same
// identity as when they sign in to the hub), their name, and the Slack id
// they acted as (via).

// peopleTTL is how long a looked-up Slack user is remembered.
const peopleTTL = time.Hour

type slackPerson struct {
	name, email string
	at          time.Time
}

// people looks Slack users up (users.info), once an hour each.
type people struct {
	api *slack.Client
	now func() time.Time

	mu    sync.Mutex
	known map[string]slackPerson
}

// by is who a command from Slack user user is recorded as.
func (b *Bot) by(ctx context.Context, user string) command.Meta {
	if !b.cfg.MapUsersByEmail || user == "" {
		return command.Meta{Actor: user}
	}
	p, ok := b.people.lookup(ctx, user)
	switch {
	case !ok:
		return command.Meta{Actor: user}
	case p.email == "":
		return command.Meta{Actor: user, ActorName: p.name}
	}
	return command.Meta{Actor: "person:" + p.email, ActorName: p.name, Via: "slack:" + user}
}

func (p *people) lookup(ctx context.Context, user string) (slackPerson, bool) {
	p.mu.Lock()
	known, ok := p.known[user]
	p.mu.Unlock()
	if ok && p.now().Sub(known.at) < peopleTTL {
		return known, true
	}
	u, err := p.api.GetUserInfoContext(ctx, user)
	if err != nil {
		// The action still counts, recorded under the Slack id alone.
		return slackPerson{}, false
	}
	known = slackPerson{name: firstOf(u.RealName, u.Profile.RealName, u.Profile.DisplayName, u.Name), email: strings.ToLower(u.Profile.Email), at: p.now()}
	p.mu.Lock()
	if len(p.known) > 10_000 {
		clear(p.known)
	}
	p.known[user] = known
	p.mu.Unlock()
	return known, true
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// identity is the hub identity Slack user user maps to (person:<email>),
// or "" without a mapping: what need-to-know matches a signed-in person
// against when the user declares, commands or joins an incident channel.
func (b *Bot) identity(ctx context.Context, user string) string {
	if !userID.MatchString(user) {
		return "" // a name typed by hand, not a Slack user
	}
	if m := b.by(ctx, user); m.Actor != user {
		return m.Actor
	}
	return ""
}

// members are Slack users as recorded in the incident's member list.
func (b *Bot) members(ctx context.Context, users []string) []events.ChannelMember {
	out := make([]events.ChannelMember, 0, len(users))
	for _, u := range users {
		out = append(out, events.ChannelMember{User: u, Identity: b.identity(ctx, u)})
	}
	return out
}

// keyed is by with an idempotency key.
func (b *Bot) keyed(ctx context.Context, user, key string) command.Meta {
	m := b.by(ctx, user)
	m.Key = key
	return m
}
