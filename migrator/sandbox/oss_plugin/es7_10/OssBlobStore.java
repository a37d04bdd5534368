/* The `oss` repository's BlobStore for Elasticsearch 7.10: one container per BlobPath. */
package migrator.oss;

import org.elasticsearch.common.blobstore.BlobContainer;
import org.elasticsearch.common.blobstore.BlobPath;
import org.elasticsearch.common.blobstore.BlobStore;

final class OssBlobStore implements BlobStore {
    private final OssStore store;

    OssBlobStore(OssStore store) {
        this.store = store;
    }

    @Override
    public BlobContainer blobContainer(BlobPath path) {
        return new OssBlobContainer(path, this);
    }

    OssStore store() {
        return store;
    }

    @Override
    public void close() {
        store.close();
    }
}
