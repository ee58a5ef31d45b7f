// Package deploy holds the container build and manifests; its test checks docker-compose.yml.
package deploy
