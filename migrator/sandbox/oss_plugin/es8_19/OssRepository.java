/* The `oss` repository for Elasticsearch 8.x: a BlobStoreRepository whose blobs live in OSS. */
package migrator.oss;

import org.elasticsearch.cluster.metadata.RepositoryMetadata;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.blobstore.BlobPath;
import org.elasticsearch.common.blobstore.BlobStore;
import org.elasticsearch.common.unit.ByteSizeValue;
import org.elasticsearch.common.util.BigArrays;
import org.elasticsearch.indices.recovery.RecoverySettings;
import org.elasticsearch.repositories.blobstore.BlobStoreRepository;
import org.elasticsearch.xcontent.NamedXContentRegistry;

final class OssRepository extends BlobStoreRepository {
    private final OssSettings settings;

    OssRepository(RepositoryMetadata metadata, NamedXContentRegistry registry, ClusterService clusterService,
                  BigArrays bigArrays, RecoverySettings recoverySettings) {
        this(metadata, OssSettings.of(metadata.name(), metadata.settings()::get), registry, clusterService,
            bigArrays, recoverySettings);
    }

    private OssRepository(RepositoryMetadata metadata, OssSettings settings, NamedXContentRegistry registry,
                          ClusterService clusterService, BigArrays bigArrays, RecoverySettings recoverySettings) {
        super(metadata, registry, clusterService, bigArrays, recoverySettings, basePath(settings));
        this.settings = settings;
    }

    private static BlobPath basePath(OssSettings settings) {
        BlobPath path = BlobPath.EMPTY;
        for (String part : settings.basePathParts()) {
            path = path.add(part);
        }
        return path;
    }

    @Override
    protected BlobStore createBlobStore() {
        return new OssBlobStore(settings.open());
    }

    @Override
    protected ByteSizeValue chunkSize() {
        return ByteSizeValue.ofBytes(settings.chunkBytes);
    }
}
