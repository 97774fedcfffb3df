// Package signaltest holds what the signals packages' tests share: the
// API token and the webhook secrets of a test configuration.
package signaltest

import "testing"

// Token is the signals API token the tests send.
const Token = "s3cret-token"

// BaseYAML configures the signal endpoints with the secrets SetSecrets
// puts in the environment.
const BaseYAML = `
signals:
  token_env: SIG_TOKEN
  grafana:
    hmac_secret_env: SIG_GRAFANA_HMAC
  aws:
    secret_env: SIG_AWS_SECRET
    sns_topics: ["arn:aws:sns:us-west-2:123456789012:MyTopic"]
`

// SetSecrets puts the token and the webhook secrets in t's environment.
func SetSecrets(t *testing.T) {
	t.Setenv("SIG_TOKEN", Token)
	t.Setenv("SIG_GRAFANA_HMAC", "grafana-hmac")
	t.Setenv("SIG_AWS_SECRET", "aws-secret")
}
