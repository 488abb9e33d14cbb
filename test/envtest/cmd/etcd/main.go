// Command etcd is the etcd server at the exact version kube-apiserver is built
// against (go.etcd.io/etcd/server/v3 from k8s.io/kubernetes's own go.mod).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
