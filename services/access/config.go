package access

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/config"
)

// Section is the name of the auth section of hikeshi.yaml.
const Section = "auth"

// Config is the auth section of hikeshi.yaml. Its presence turns off the
// loopback operator: every request must authenticate.
type Config struct {
	// ShowCodenames lists a confidential incident, under its codename and
	// nothing else, to those who may not read it. Default: hidden.
	ShowCodenames bool        `yaml:"show_codenames"`
	OIDC          *OIDCConfig `yaml:"oidc"`
}

// OIDCConfig is sign-in for people with an OpenID Connect provider.
type OIDCConfig struct {
	Issuer          string `yaml:"issuer"`
	ClientID        string `yaml:"client_id"`
	ClientSecretEnv string `yaml:"client_secret_env"`
	// RedirectURL is where the provider sends people back; default
	// <public url>/auth/callback.
	RedirectURL string `yaml:"redirect_url"`
	// AllowedDomains, when set, admits only e-mail addresses of these
	// domains (the hd claim of Google Workspace is not needed).
	AllowedDomains []string `yaml:"allowed_domains"`
	// GroupsClaim names the ID token claim listing the person's groups.
	GroupsClaim string `yaml:"groups_claim"`
	// Roles maps a group (or an e-mail address, or "*" for anyone
	// admitted) to a role; a person gets the highest role mapped.
	Roles map[string]string `yaml:"roles"`
	// Scopes asked for besides openid (default: email, profile).
	Scopes []string `yaml:"scopes"`
	// SessionTTL is how long a browser session lasts (default 12h).
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// LoadConfig reads the auth section; ok is false when there is none.
func LoadConfig(f *config.File) (c Config, ok bool, err error) {
	ok, err = f.Section(Section, &c)
	if err != nil || !ok {
		return c, ok, err
	}
	if c.OIDC != nil {
		err = c.OIDC.validate()
	}
	return c, ok, err
}

func (o *OIDCConfig) validate() error {
	var missing []string
	if o.Issuer == "" {
		missing = append(missing, "issuer")
	}
	if o.ClientID == "" {
		missing = append(missing, "client_id")
	}
	if o.ClientSecretEnv == "" {
		missing = append(missing, "client_secret_env")
	}
	if len(missing) > 0 {
		return fmt.Errorf("auth.oidc: set %s", strings.Join(missing, ", "))
	}
	if u, err := url.Parse(o.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("auth.oidc.issuer %q: want the provider's URL, e.g. https://accounts.google.com", o.Issuer)
	}
	if len(o.Roles) == 0 {
		return errors.New("auth.oidc.roles: map at least one group, e-mail address or \"*\" to a role, or nobody who signs in may do anything")
	}
	for who, role := range o.Roles {
		if _, err := ParseRole(role); err != nil {
			return fmt.Errorf("auth.oidc.roles[%s]: %w", who, err)
		}
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = "groups"
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"email", "profile"}
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.SessionTTL > natsjs.MaxSession {
		return fmt.Errorf("auth.oidc.session_ttl %s: at most %s", o.SessionTTL, natsjs.MaxSession)
	}
	return nil
}

// RoleFor is the highest role the mapping gives a person with these
// groups and e-mail address.
func RoleFor(mapping map[string]string, email string, groups []string) Role {
	best := None
	consider := func(key string) {
		if r, err := ParseRole(mapping[key]); err == nil && r > best {
			best = r
		}
	}
	consider("*")
	if email != "" {
		for k := range mapping {
			if strings.EqualFold(k, email) {
				consider(k)
			}
		}
	}
	for _, g := range groups {
		consider(g)
	}
	return best
}
