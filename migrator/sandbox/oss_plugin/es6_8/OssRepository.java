/*
 * The `oss` repository for Elasticsearch 6.8: a BlobStoreRepository whose blobs live in OSS. 6.8's
 * constructor calls chunkSize() and isCompress() before a subclass's fields are set, so every method
 * reads the repository's settings from `metadata` (set first) rather than from a field.
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
    OssRepository(RepositoryMetaData metadata, Settings nodeSettings, NamedXContentRegistry registry) {
        super(metadata, nodeSettings, registry);
        settings();  // a bad setting fails the registration, not the first snapshot
    }

    private OssSettings settings() {
        return OssSettings.of(metadata.name(), metadata.settings()::get);
    }

    @Override
    protected BlobStore createBlobStore() {
        return new OssBlobStore(settings().open());
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
