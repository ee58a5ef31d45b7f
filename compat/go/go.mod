module github.com/gamify/boost/compat/go

go 1.26

require github.com/posthog/posthog-go v1.5.2
