/* The `oss` repository for Elasticsearch 6.8: a BlobStoreRepository whose blobs live in OSS. */
package migrator.oss;

import org.elasticsearch.cluster.metadata.RepositoryMetaData;
import org.elasticsearch.common.blobstore.BlobPath;
import org.elasticsearch.common.blobstore.BlobStore;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.unit.ByteSizeValue;
import org.elasticsearch.common.xcontent.NamedXContentRegistry;
import org.elasticsearch.repositories.blobstore.BlobStoreRepository;

final class OssRepository extends BlobStoreRepository {
    private final OssSettings settings;
    private final boolean compress;

    OssRepository(RepositoryMetaData metadata, Settings nodeSettings, NamedXContentRegistry registry) {
        super(metadata, nodeSettings, registry);
        this.settings = OssSettings.of(metadata.name(), metadata.settings()::get);
        this.compress = metadata.settings().getAsBoolean("compress", false);
    }

    @Override
    protected BlobStore createBlobStore() {
        return new OssBlobStore(settings.open());
    }

    @Override
    protected BlobPath basePath() {
        BlobPath path = BlobPath.cleanPath();
        for (String part : settings.basePathParts()) {
            path = path.add(part);
        }
        return path;
    }

    @Override
    protected boolean isCompress() {
        return compress;
    }

    @Override
    protected ByteSizeValue chunkSize() {
        return new ByteSizeValue(settings.chunkBytes);
    }
}
