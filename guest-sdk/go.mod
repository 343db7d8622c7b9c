module github.com/breakwater-dev/breakwater/guest-sdk

go 1.26.0
