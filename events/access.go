package events

import "time"

// Access changes: who may call the hub. They travel on their own stream,
// never on an incident's, and never carry a token, its hash or a secret.
const (
	AccessStream        = "ACCESS"
	AccessSubjectPrefix = "access"

	TypeTokenCreated       = "io.hikeshi.access.token_created"
	TypeTokenRevoked       = "io.hikeshi.access.token_revoked"
	TypeRoleMappingChanged = "io.hikeshi.access.role_mapping_changed"
)

// RoleMappingID is the subject key of role mapping changes:
// DeriveID("access", "role-mapping").
const RoleMappingID = "6bda723f-0f40-8a97-bd98-477c103e1340"

// AccessSubject is the subject of an access event about key (a token id, or
// the role mapping's fixed id).
func AccessSubject(key, name string) string { return AccessSubjectPrefix + "." + key + "." + name }

// TokenCreated records a new API token: who it is for and what it may do.
type TokenCreated struct {
	TokenID   string     `json:"token_id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Scopes    []string   `json:"scopes,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// TokenRevoked records that a token no longer authenticates anyone.
type TokenRevoked struct {
	TokenID string `json:"token_id"`
	Name    string `json:"name"`
}

// RoleMappingChanged records the configured mapping of groups (from the
// OIDC provider) to roles, when it differs from the last one recorded.
type RoleMappingChanged struct {
	Mapping  map[string]string `json:"mapping"`
	Previous map[string]string `json:"previous,omitempty"`
}

func (TokenCreated) EventType() string       { return TypeTokenCreated }
func (TokenRevoked) EventType() string       { return TypeTokenRevoked }
func (RoleMappingChanged) EventType() string { return TypeRoleMappingChanged }

func init() {
	Register(Spec{Type: TypeTokenCreated, Name: "token_created", Version: 1,
		Doc: "An API token was created (its secret is never recorded).", New: func() Data { return &TokenCreated{} }})
	Register(Spec{Type: TypeTokenRevoked, Name: "token_revoked", Version: 1,
		Doc: "An API token was revoked.", New: func() Data { return &TokenRevoked{} }})
	Register(Spec{Type: TypeRoleMappingChanged, Name: "role_mapping_changed", Version: 1,
		Doc: "The mapping of identity-provider groups to roles changed.", New: func() Data { return &RoleMappingChanged{} }})
}
