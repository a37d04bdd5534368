/* The `oss` repository's BlobStore for Elasticsearch 5.6: one container per BlobPath; delete(path) removes every blob under it. */
package migrator.oss;

import org.elasticsearch.common.blobstore.BlobContainer;
import org.elasticsearch.common.blobstore.BlobPath;
import org.elasticsearch.common.blobstore.BlobStore;

import java.io.IOException;

final class OssBlobStore implements BlobStore {
    private final OssStore store;

    OssBlobStore(OssStore store) {
        this.store = store;
    }

    @Override
    public BlobContainer blobContainer(BlobPath path) {
        return new OssBlobContainer(path, this);
    }

    @Override
    public void delete(BlobPath path) throws IOException {
        String prefix = path.buildAsString();
        store.delete(new Prefixed(prefix, store.list(prefix, false).blobs.keySet().iterator()));
    }

    OssStore store() {
        return store;
    }

    @Override
    public void close() {
        store.close();
    }
}
