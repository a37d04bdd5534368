"""Reading an Elasticsearch snapshot repository straight from its blobs, through the storage layer."""
