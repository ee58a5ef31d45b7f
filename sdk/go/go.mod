module github.com/gamify/boost/sdk/go

go 1.26
