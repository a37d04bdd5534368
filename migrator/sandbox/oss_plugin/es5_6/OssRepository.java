/*
 * The `oss` repository for Elasticsearch 5.6: a BlobStoreRepository whose blobs live in OSS. 5.6 asks
 * blobStore() each time it needs the store (one is made on first use and kept), and its constructor
 * calls chunkSize() and isCompress() before a subclass's fields are set, so those read `metadata`.
 */
package migrator.oss;

import org.elasticsearch.cluster.metadata.RepositoryMetaData;
import org.elasticsearch.common.blobstore.BlobPath;
import org.elasticsearch.common.blobstore.BlobStore;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.unit.ByteSizeValue;
import org.elasticsearch.common.xcontent.NamedXContentRegistry;
import org.elasticsearch.repositories.blobstore.BlobStoreRepository;

final class OssRepository extends BlobStoreRepository {
    private OssBlobStore store;

    OssRepository(RepositoryMetaData metadata, Settings nodeSettings, NamedXContentRegistry registry) {
        super(metadata, nodeSettings, registry);
        settings();  // a bad setting fails the registration, not the first snapshot
    }

    private OssSettings settings() {
        return OssSettings.of(metadata.name(), metadata.settings()::get);
    }

    @Override
    protected synchronized BlobStore blobStore() {
        if (store == null) {
            store = new OssBlobStore(settings().open());
        }
        return store;
    }

    @Override
    protected synchronized void doClose() {
        if (store != null) {
            store.close();
        }
    }

    @Override
    protected BlobPath basePath() {
        BlobPath path = BlobPath.cleanPath();
        for (String part : settings().basePathParts()) {
            path = path.add(part);
        }
        return path;
    }

    @Override
    protected boolean isCompress() {
        return metadata.settings().getAsBoolean("compress", false);
    }

    @Override
    protected ByteSizeValue chunkSize() {
        return new ByteSizeValue(settings().chunkBytes);
    }
}
