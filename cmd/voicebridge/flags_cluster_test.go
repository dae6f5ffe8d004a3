package main

import (
	"io"
	"strings"
	"testing"
)

func TestParseConfigClusterFlags(t *testing.T) {
	o, err := parseConfig([]string{"-node-url", "http://10.0.0.11:8080"},
		env(map[string]string{"VOICEBRIDGE_CLUSTER_REDIS": "redis://:s3cret@10.0.0.2:6379/1"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.ClusterRedis != "redis://:s3cret@10.0.0.2:6379/1" || o.NodeURL != "http://10.0.0.11:8080" {
		t.Errorf("cluster: %q %q", o.ClusterRedis, o.NodeURL)
	}
	for _, bad := range [][]string{
		{"-cluster-redis", "redis://10.0.0.2:6379/0"},                                // no -node-url
		{"-node-url", "http://10.0.0.11:8080"},                                       // no -cluster-redis
		{"-cluster-redis", "http://10.0.0.2:6379", "-node-url", "http://a:1"},        // not redis://
		{"-cluster-redis", "redis://:s3cret@h:1/x", "-node-url", "http://a:1"},       // db not a number
		{"-cluster-redis", "redis://h:1/0", "-node-url", "10.0.0.11:8080"},           // no scheme
		{"-cluster-redis", "redis://h:1/0", "-node-url", "http://10.0.0.11:8080/vb"}, // a path
	} {
		_, err := parseConfig(bad, env(nil), io.Discard)
		if err == nil {
			t.Errorf("%v: want an error", bad)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v: the error shows the password: %v", bad, err)
		}
	}
	var sb strings.Builder
	_, _ = parseConfig([]string{"-h"}, env(nil), &sb)
	for _, f := range []string{"cluster-redis", "node-url"} {
		if !strings.Contains(sb.String(), "-"+f+" ") || !strings.Contains(sb.String(), envName(f)) {
			t.Errorf("help lacks -%s or %s", f, envName(f))
		}
	}
}
