// Package ci holds the GitHub Actions workflows that run release plan on
// pull requests and fan release build out as a matrix (pull-request.yml,
// release.yml; see docs/github-actions.md). Its test lints them.
package ci
